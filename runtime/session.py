"""onnxruntime sessions built on purpose: provider choice, threads and graph optimisation.

The model file is read into memory and handed to onnxruntime as bytes, so a model can
never pull external-data files from outside its folder (or from anywhere at all): an
rnnedge file is self-contained by contract.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from .errors import ConfigError, ModelFileError, ProviderError

__all__ = ["MAX_MODEL_BYTES", "Provider", "SessionOptions", "available_providers", "make_session"]

logger = logging.getLogger("rnnedge")
Provider = Literal["cpu", "cuda", "auto"]
MAX_MODEL_BYTES = 2 * 1024**3  # protobuf's own limit for a single-file model
_ORT_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@dataclass(frozen=True)
class SessionOptions:
    """How the onnxruntime session runs.

    ``threads`` is the intra-op thread count (``None``: onnxruntime's default, one per
    core). ``optimization`` is ``"all"``, ``"extended"``, ``"basic"`` or ``"disabled"``.
    ``optimized_model_path`` saves the optimised graph for inspection.
    """

    threads: int | None = None
    optimization: str = "all"
    optimized_model_path: str | None = None


_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build offers."""
    return list(ort.get_available_providers())


def _resolve_provider(provider: str) -> str:
    available = available_providers()
    if provider == "auto":
        if _ORT_NAMES["cuda"] in available:
            return "cuda"
        logger.warning("rnnedge: CUDA execution provider not available (have %s); running on the CPU", available)
        return "cpu"
    if provider not in _ORT_NAMES:
        raise ProviderError(f"provider must be 'cpu', 'cuda' or 'auto', got {provider!r}")
    if _ORT_NAMES[provider] not in available:
        hint = " (install onnxruntime-gpu in place of onnxruntime, see the README)" if provider == "cuda" else ""
        raise ProviderError(f"onnxruntime offers {available}, not {_ORT_NAMES[provider]}{hint}")
    return provider


def make_session(
    path: str | os.PathLike[str], provider: str, options: SessionOptions
) -> tuple[ort.InferenceSession, str]:
    """Open ``path`` as an onnxruntime session; return it and the provider actually used."""
    path = Path(path)
    if options.threads is not None and (isinstance(options.threads, bool) or options.threads < 1):
        raise ConfigError(f"threads must be a positive int or None, got {options.threads!r}")
    if options.optimization not in _LEVELS:
        raise ConfigError(f"optimization must be one of {sorted(_LEVELS)}, got {options.optimization!r}")
    resolved = _resolve_provider(provider)
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ModelFileError(f"model file {path} is {size} bytes, over the {MAX_MODEL_BYTES}-byte limit")
        data = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read model file {path}: {e.strerror or e}") from None
    if not data:
        raise ModelFileError(f"model file {path} is empty")
    so = ort.SessionOptions()
    so.graph_optimization_level = _LEVELS[options.optimization]
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if options.threads is not None:
        so.intra_op_num_threads = options.threads
    if options.optimized_model_path:
        so.optimized_model_filepath = str(options.optimized_model_path)
    providers = [_ORT_NAMES[resolved]] + ([_ORT_NAMES["cpu"]] if resolved == "cuda" else [])
    try:
        session = ort.InferenceSession(data, sess_options=so, providers=providers)
    except Exception as e:  # onnxruntime raises several unrelated types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"onnxruntime cannot load {path} as an ONNX model: {first}") from None
    return session, resolved
