"""The execution providers the bench runs on, as the runtime names them and as onnxruntime does."""

from __future__ import annotations

from rnnedge.errors import ProviderError

__all__ = ["PROVIDERS", "ort_providers"]

PROVIDERS = ("cpu", "cuda", "auto")  # what rnnedge.runtime.load accepts; "auto" resolves to one of the others

_ORT_NAMES = {
    "cpu": ["CPUExecutionProvider"],
    # As the runtime opens a CUDA session: nodes CUDA lacks run on the CPU.
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def ort_providers(resolved: str) -> list[str]:
    """onnxruntime's provider list for a resolved provider (``"cpu"`` or ``"cuda"``, a model's ``provider``)."""
    if resolved not in _ORT_NAMES:
        raise ProviderError(f"provider must be 'cpu' or 'cuda' (a loaded model's provider), got {resolved!r}")
    return list(_ORT_NAMES[resolved])
