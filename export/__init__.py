"""Export stage: checkpoint to validated, self-describing ONNX.

- :mod:`.exporter` — ``export_model`` (the one export: float file, then its variants) and ``export_checkpoint``.
- :mod:`.batch` — many runs into a folder with a manifest and a report, through ``export_model``.
- :mod:`.kinds` — the registry: per training kind, its graph writer, validation reference, metadata
  builder and quality measure; :mod:`.sequence_classifier` and :mod:`.word_lm` register rnnedge's own.
- :mod:`.graphs` — the ONNX graphs, node by node; :mod:`.metadata` — the one place metadata enters a graph.
- :mod:`.validate` — parity with PyTorch, tolerances per quantity, typed mismatches.
- :mod:`.variants` — int8 (:mod:`.quantize`) and fp16 (:mod:`.half`) files made and described in one place.
- :mod:`.quality` — a file's quality measured as ``rnnedge classify`` / ``perplexity`` measure it.
- :mod:`.files` — output paths checked, write failures as messages.

Nothing is imported here, so that ``rnnedge.export.quality`` stays importable without torch.
"""
