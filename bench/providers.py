"""The execution providers the bench runs on, as the runtime names them and as onnxruntime does."""

from __future__ import annotations

__all__ = ["PROVIDERS", "ort_providers"]

PROVIDERS = ("cpu", "cuda", "auto")  # what rnnedge.runtime.load accepts; "auto" resolves to one of the others

_ORT_NAMES = {
    "cpu": ["CPUExecutionProvider"],
    # As the runtime opens a CUDA session: nodes CUDA lacks run on the CPU.
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def ort_providers(resolved: str) -> list[str]:
    """onnxruntime's provider list for a resolved provider (``"cpu"`` or ``"cuda"``, a model's ``provider``)."""
    return list(_ORT_NAMES[resolved])
