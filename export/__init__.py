"""Export stage: checkpoint to validated, self-describing ONNX."""
