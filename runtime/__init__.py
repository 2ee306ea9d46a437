"""rnnedge's runtime: load an exported ``.onnx`` and run it, batch or streaming (numpy + onnxruntime only).

>>> model = load("mnist-lstm.onnx")
>>> probs = model.predict(images)            # (N, 10)
>>> stream = model.stream()
>>> for row in image: probs = stream.feed(row)
"""

from __future__ import annotations

import os
from pathlib import Path

from .classifier import ClassifierModel
from .errors import (
    CheckpointError,
    ConcurrentUseError,
    ConfigError,
    DataError,
    ExportValidationError,
    InputError,
    MissingExtraError,
    ModelClosedError,
    ModelFileError,
    ProviderError,
    RnnEdgeError,
    StateError,
    TokenError,
)
from .language import LanguageModel, LanguageStream
from .metadata import FORMAT_VERSION, ModelMetadata
from .model import Model, open_model_file
from .session import SessionOptions, available_providers, metadata_text, read_model_bytes
from .state import State
from .stream import Stream
from .stream_batch import StreamBatch

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "ClassifierModel",
    "ConcurrentUseError",
    "ConfigError",
    "DataError",
    "ExportValidationError",
    "InputError",
    "LanguageModel",
    "LanguageStream",
    "MissingExtraError",
    "Model",
    "ModelClosedError",
    "ModelFileError",
    "ModelMetadata",
    "ProviderError",
    "RnnEdgeError",
    "SessionOptions",
    "State",
    "StateError",
    "Stream",
    "StreamBatch",
    "TokenError",
    "available_providers",
    "load",
    "read_metadata",
]


_MODEL_CLASSES: dict[str, type[Model]] = {
    "causal_classifier": ClassifierModel,
    "noncausal_classifier": ClassifierModel,
    "language_model": LanguageModel,
}


def load(
    path: str | os.PathLike[str],
    provider: str = "cpu",
    threads: int | None = 1,
    *,
    optimization: str = "all",
    optimized_model_path: str | None = None,
    state_on_device: bool | None = None,
) -> Model:
    """Open an rnnedge ``.onnx`` file; the returned model is stateless and can be shared between threads.

    ``provider`` is ``"cpu"``, ``"cuda"`` (an error if onnxruntime lacks CUDA) or
    ``"auto"`` (CUDA when available, else the CPU with a logged warning).
    ``state_on_device`` keeps each stream's state on the execution device between steps
    through I/O binding (default: on for CUDA, where it saves two copies per step; off on
    the CPU, where there is nothing to save).
    """
    if state_on_device is not None and not isinstance(state_on_device, bool):
        raise ConfigError(f"state_on_device must be True, False or None, got {state_on_device!r}")
    options = SessionOptions(threads=threads, optimization=optimization, optimized_model_path=optimized_model_path)
    session, metadata, resolved = open_model_file(path, provider, options)
    model = _MODEL_CLASSES[metadata.kind](session, metadata, Path(path), resolved)
    if state_on_device is not None:
        if state_on_device and not model.SUPPORTS_STATE_ON_DEVICE:
            raise ConfigError(
                f"state_on_device: only language models keep streams' state on the device, {path} is a {model.kind}"
            )
        model.state_on_device = state_on_device
    return model


def read_metadata(path: str | os.PathLike[str]) -> ModelMetadata:
    """A model file's metadata, without starting onnxruntime: for any variant on any machine (e.g. fp16 here)."""
    return ModelMetadata.from_json(metadata_text(read_model_bytes(path), path))
