"""rnnedge's runtime: load an exported ``.onnx`` and run it, batch or streaming (numpy + onnxruntime only).

>>> model = load("mnist-lstm.onnx")
>>> probs = model.predict(sequences)          # (N, 10)
>>> stream = model.stream()
>>> for row in sequence: probs = stream.feed(row)
>>> streams = [model.stream() for _ in range(8)]
>>> probs = model.feed(streams, rows)         # (8, 10): every stream advanced in one onnxruntime call
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

# The built-in kinds: each module registers its kind on import (kinds.py), this is their one list.
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
    NotPicklableError,
    ProviderError,
    RnnEdgeError,
    StateError,
    TokenError,
)
from .kinds import RuntimeKind, register_kind, registered_kinds, runtime_kind
from .language import LanguageModel
from .metadata import FORMAT_VERSION, ModelMetadata
from .model import Model, Stream
from .network import Network
from .session import (
    SessionOptions,
    available_providers,
    check_options,
    make_session,
    metadata_text,
    read_model,
    read_model_bytes,
    refuse_fp16_on_cpu,
)
from .state import State
from .stream_batch import StreamBatch
from .tagger import TaggerModel  # registers the tagger kind

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
    "MissingExtraError",
    "Model",
    "ModelClosedError",
    "ModelFileError",
    "ModelMetadata",
    "Network",
    "NotPicklableError",
    "ProviderError",
    "RnnEdgeError",
    "RuntimeKind",
    "SessionOptions",
    "State",
    "StateError",
    "Stream",
    "StreamBatch",
    "TaggerModel",
    "TokenError",
    "available_providers",
    "load",
    "load_classifier",
    "load_language_model",
    "read_metadata",
    "register_kind",
    "registered_kinds",
    "runtime_kind",
]


ModelT = TypeVar("ModelT", bound=Model)


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

    Returns the model face of the file's kind (:class:`ClassifierModel`, :class:`LanguageModel`);
    :func:`load_classifier` and :func:`load_language_model` also check the kind and are typed precisely.
    ``provider`` is ``"cpu"``, ``"cuda"`` (an error if onnxruntime lacks CUDA) or
    ``"auto"`` (CUDA when available, else the CPU with a logged warning).
    ``state_on_device`` keeps each stream's state on the execution device between steps
    through I/O binding (default: on for CUDA, where it saves two copies per step; off on
    the CPU, where there is nothing to save).
    """
    if state_on_device is not None and not isinstance(state_on_device, bool):
        raise ConfigError(f"state_on_device must be True, False or None, got {state_on_device!r}")
    if not isinstance(path, (str, os.PathLike)):
        raise ModelFileError(f"model path must be a str or os.PathLike, got {type(path).__name__}")
    options = SessionOptions(threads=threads, optimization=optimization, optimized_model_path=optimized_model_path)
    resolved = check_options(provider, options)
    data, text = read_model(path)
    metadata = ModelMetadata.from_json(text)
    kind = runtime_kind(metadata)
    if resolved == "cpu":
        refuse_fp16_on_cpu(metadata.variant, Path(path))
    session = make_session(data, Path(path), resolved, options)
    return kind.model(session, metadata, Path(path), resolved, state_on_device=state_on_device)


def load_classifier(path: str | os.PathLike[str], provider: str = "cpu", threads: int | None = 1) -> ClassifierModel:
    """:func:`load` a classifier file (causal or not); :class:`ModelFileError` if the file holds another kind."""
    return _load_as(ClassifierModel, "a classifier", path, provider, threads)


def load_language_model(
    path: str | os.PathLike[str], provider: str = "cpu", threads: int | None = 1, *, state_on_device: bool | None = None
) -> LanguageModel:
    """:func:`load` a language-model file; :class:`ModelFileError` if the file holds another kind."""
    return _load_as(LanguageModel, "a language model", path, provider, threads, state_on_device=state_on_device)


def _load_as(
    face: type[ModelT],
    what: str,
    path: str | os.PathLike[str],
    provider: str,
    threads: int | None,
    *,
    state_on_device: bool | None = None,
) -> ModelT:
    model = load(path, provider, threads, state_on_device=state_on_device)
    if not isinstance(model, face):
        model.close()
        raise ModelFileError(f"{path} is a {model.kind}, not {what}")
    return model


def read_metadata(path: str | os.PathLike[str]) -> ModelMetadata:
    """A model file's metadata, without starting onnxruntime: for any variant on any machine (e.g. fp16 here)."""
    return ModelMetadata.from_json(metadata_text(read_model_bytes(path), path))
