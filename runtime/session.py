"""onnxruntime sessions built on purpose: provider choice, threads and graph optimisation.

The model file is read into memory and handed to onnxruntime as bytes, and a model whose
tensors point at external data is refused before onnxruntime sees it: onnxruntime would
otherwise resolve such paths against the current directory. An rnnedge file is
self-contained by contract, so no path inside a model is ever opened.
"""

from __future__ import annotations

import logging
import operator
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from .errors import ConfigError, ModelFileError, ProviderError
from .metadata import METADATA_KEY

__all__ = [
    "MAX_MODEL_BYTES",
    "Provider",
    "RunFn",
    "SessionOptions",
    "available_providers",
    "check_options",
    "make_session",
    "metadata_text",
    "read_model",
    "read_model_bytes",
    "refuse_fp16_on_cpu",
    "run_function",
]

logger = logging.getLogger("rnnedge")
Provider = Literal["cpu", "cuda", "auto"]
MAX_MODEL_BYTES = 2 * 1024**3  # protobuf's own limit for a single-file model
MAX_THREADS = 1024  # more intra-op threads than any machine has cores only exhausts the process
_ORT_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
RunFn = Callable[[Sequence[str], Mapping[str, np.ndarray]], list[Any]]


@dataclass(frozen=True)
class SessionOptions:
    """How the onnxruntime session runs.

    ``threads`` is the intra-op thread count: 1 by default, measured fastest for batch-1
    streaming on a small shared CPU (see the README: a second thread's hand-off costs more
    than it saves on a step of a few hundred microseconds, and an embedding application
    has its own threads to run); ``None`` is onnxruntime's default, one per core, which
    can pay off for large batches on an idle machine. ``optimization`` is ``"all"``,
    ``"extended"``, ``"basic"`` or ``"disabled"``. ``optimized_model_path`` saves the
    optimised graph for inspection (use ``"extended"`` for a portable one).
    """

    threads: int | None = 1
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
    if not isinstance(provider, str) or provider not in _ORT_NAMES:
        raise ProviderError(f"provider must be 'cpu', 'cuda' or 'auto', got {provider!r}")
    if _ORT_NAMES[provider] not in available:
        hint = " (install onnxruntime-gpu in place of onnxruntime, see the README)" if provider == "cuda" else ""
        raise ProviderError(f"onnxruntime offers {available}, not {_ORT_NAMES[provider]}{hint}")
    return provider


def read_model(path: str | os.PathLike[str]) -> tuple[bytes, str]:
    """A model file's bytes and its rnnedge metadata JSON, from one pass over the protobuf.

    Refused if unreadable, empty, oversized, pointing at external data or lacking rnnedge metadata.
    """
    data = _read_bytes(path)
    try:
        external, props = _scan(data)
    except _Malformed as e:
        raise ModelFileError(f"cannot load {path} as an ONNX model: not a valid ONNX protobuf ({e})") from None
    except UnicodeDecodeError as e:
        raise ModelFileError(f"model file {path} holds metadata that is not UTF-8 text: {e.reason}") from None
    _refuse_external(external, Path(path))
    if METADATA_KEY not in props:
        raise ModelFileError(
            f"{path} carries no rnnedge metadata (key {METADATA_KEY!r}); export it with `rnnedge export`"
        )
    return data, props[METADATA_KEY]


def read_model_bytes(path: str | os.PathLike[str]) -> bytes:
    """A model file's bytes, refused if unreadable, empty, oversized or pointing at external data."""
    data = _read_bytes(path)
    _refuse_external_data(data, Path(path))
    return data


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    if not isinstance(path, (str, os.PathLike)):
        raise ModelFileError(f"model path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ModelFileError(f"model file {path} is {size} bytes, over the {MAX_MODEL_BYTES}-byte limit")
        data = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read model file {path}: {e.strerror or e}") from None
    if not data:
        raise ModelFileError(f"model file {path} is empty")
    if data[:4] == b"PK\x03\x04":  # a zip archive, as torch.save writes: a checkpoint, not a model file
        raise ModelFileError(
            f"{path} is a zip archive, like a PyTorch checkpoint, not an ONNX model; make a model file from a "
            "checkpoint with `rnnedge export CHECKPOINT -o MODEL.onnx`"
        )
    return data


def metadata_text(data: bytes, path: str | os.PathLike[str]) -> str:
    """The rnnedge metadata JSON of a model's bytes, read without onnxruntime."""
    try:
        props = _metadata_props(data)
    except _Malformed as e:
        raise ModelFileError(f"cannot load {path} as an ONNX model: not a valid ONNX protobuf ({e})") from None
    if METADATA_KEY not in props:
        raise ModelFileError(
            f"{path} carries no rnnedge metadata (key {METADATA_KEY!r}); export it with `rnnedge export`"
        )
    return props[METADATA_KEY]


def check_options(provider: str, options: SessionOptions) -> str:
    """Refuse bad session options before any file is read; return the provider that will be used."""
    threads = options.threads
    if threads is not None and (isinstance(threads, bool) or not 1 <= _as_int(threads, 0) <= MAX_THREADS):
        raise ConfigError(f"threads must be a positive int (at most {MAX_THREADS}) or None, got {threads!r}")
    if not isinstance(options.optimization, str) or options.optimization not in _LEVELS:
        raise ConfigError(f"optimization must be one of {sorted(_LEVELS)}, got {options.optimization!r}")
    return _resolve_provider(provider)


def make_session(data: bytes, path: Path, resolved: str, options: SessionOptions) -> ort.InferenceSession:
    """An onnxruntime session of a model's bytes (already read and checked) on the ``resolved`` provider."""
    threads = options.threads
    so = ort.SessionOptions()
    so.add_session_config_entry("session.load_model_format", "ONNX")  # never the ORT flatbuffer format
    so.graph_optimization_level = _LEVELS[options.optimization]
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads is not None:
        so.intra_op_num_threads = _as_int(threads, 0)
    if options.optimized_model_path:
        so.optimized_model_filepath = str(options.optimized_model_path)
    providers = [_ORT_NAMES[resolved]] + ([_ORT_NAMES["cpu"]] if resolved == "cuda" else [])
    try:
        # No fallback: onnxruntime's retries print to stdout and would only repeat the same failure.
        session = ort.InferenceSession(data, sess_options=so, providers=providers, enable_fallback=0)
    except Exception as e:  # onnxruntime raises several unrelated types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"onnxruntime cannot load {path} as an ONNX model: {first}") from None
    try:  # onnxruntime decodes these strings only when asked: invalid UTF-8 would fail later, as a UnicodeDecodeError
        meta = session.get_modelmeta()
        texts = [meta.custom_metadata_map, meta.producer_name, meta.graph_name, meta.domain, meta.description]
        texts += [(v.name, v.type, v.shape) for v in (*session.get_inputs(), *session.get_outputs())]
    except UnicodeDecodeError as e:
        raise ModelFileError(f"model file {path} holds names or metadata that are not UTF-8 text: {e.reason}") from None
    return session


def run_function(session: ort.InferenceSession) -> RunFn:
    """``run(output names, feeds)`` of ``session`` without the Python wrapper's per-call checks.

    ``InferenceSession.run`` re-validates the feed names, OrtValue ownership and graph
    capture, and wraps the call for provider fallback, on every call: about 5 µs, a tenth
    of a 28-pixel classifier step. rnnedge checks every input itself before a call, feeds
    numpy arrays only and disables fallback, so it calls the compiled session directly,
    falling back to the public method on an onnxruntime whose wrapper is laid out otherwise.
    """
    inner = getattr(session, "_sess", None)
    call = getattr(inner, "run", None)
    if callable(call):
        return lambda names, feeds: call(names, feeds, None)
    run: RunFn = session.run
    return run


def _as_int(value: object, default: int) -> int:
    """``value`` as an int if it is one (a Python or numpy integer), else ``default``."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return default


# -- external data: found by reading the protobuf wire format, without the onnx package ----------------
class _Malformed(Exception):
    """The bytes are not a well-formed protobuf message."""


# Where tensors can sit in an ONNX ModelProto: {message: {field number: message type of that field}}.
_TENSOR_FIELDS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},  # ModelProto.graph, .training_info, .functions
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto.initialization, .algorithm
    "function": {7: "node"},  # FunctionProto.node
    "graph": {1: "node", 5: "tensor", 15: "sparse"},  # GraphProto.node, .initializer, .sparse_initializer
    "node": {5: "attribute"},  # NodeProto.attribute
    # AttributeProto.t, .g, .tensors, .graphs, .sparse_tensor, .sparse_tensors
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},  # SparseTensorProto.values, .indices
    "tensor": {},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 8, 13, 14, 1
_MAX_NESTING = 100  # protobuf's own default recursion limit


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 70:
        if pos >= end:
            raise _Malformed("a number runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise _Malformed("a number is longer than 10 bytes")


def _fields(buf: bytes, start: int, end: int, depth: int = 0) -> Iterator[tuple[int, int, int, int]]:
    """``(field number, wire type, value or start, end)`` of each field in ``buf[start:end]``.

    For length-delimited fields (wire type 2) the last two items bound the payload;
    for varints the third is the value. Groups and fixed-size fields are skipped.
    """
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, pos
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if length > end - pos:
                raise _Malformed("a field runs past the end of its message (truncated file?)")
            yield number, wire, pos, pos + length
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise _Malformed("a field runs past the end of its message (truncated file?)")
        elif wire == 3:
            if depth >= _MAX_NESTING:
                raise _Malformed(f"groups nested deeper than {_MAX_NESTING}")
            for inner, inner_wire, _, inner_end in _fields(buf, pos, end, depth + 1):
                if inner_wire == 4:
                    if inner != number:
                        raise _Malformed("a group ends with the wrong field number")
                    pos = inner_end
                    break
            else:
                raise _Malformed("a group has no end")
        elif wire == 4:
            yield number, wire, pos, pos  # the caller (a group) ends here
            return
        else:
            raise _Malformed(f"wire type {wire}")


def _external_tensors(data: bytes) -> list[str]:
    """Names of the tensors in an ONNX model that keep their data outside the file."""
    return _scan(data)[0]


def _scan(data: bytes) -> tuple[list[str], dict[str, str]]:
    """One pass over a model's protobuf: the tensors kept outside the file, and the ``metadata_props``."""
    found: list[str] = []
    props: dict[str, str] = {}
    stack = [("model", 0, len(data), 0)]
    while stack:
        kind, start, end, depth = stack.pop()
        if depth > _MAX_NESTING:
            raise _Malformed(f"messages nested deeper than {_MAX_NESTING}")
        name, external = "", False
        for number, wire, a, b in _fields(data, start, end):
            if wire == 4:
                raise _Malformed("a group ends where none began")
            if kind == "tensor":
                if number == _TENSOR_NAME and wire == 2:
                    name = data[a:b].decode("utf-8", "replace")
                elif (number == _TENSOR_DATA_LOCATION and wire == 0 and a == _EXTERNAL) or (
                    number == _TENSOR_EXTERNAL_DATA
                ):
                    external = True
            elif wire == 2 and number in _TENSOR_FIELDS[kind]:
                stack.append((_TENSOR_FIELDS[kind][number], a, b, depth + 1))
            elif kind == "model" and number == _MODEL_METADATA_PROPS and wire == 2:
                key, value = _entry(data, a, b, "strict")
                props[key] = value
        if external:
            found.append(name or "<unnamed>")
    return found, props


def _refuse_external_data(data: bytes, path: Path) -> None:
    """An rnnedge model is one self-contained file: refuse any tensor whose data lives elsewhere."""
    try:
        external = _external_tensors(data)
    except _Malformed as e:
        raise ModelFileError(f"cannot load {path} as an ONNX model: not a valid ONNX protobuf ({e})") from None
    _refuse_external(external, path)


def _refuse_external(external: list[str], path: Path) -> None:
    if external:
        shown = ", ".join(external[:5]) + (f" and {len(external) - 5} more" if len(external) > 5 else "")
        raise ModelFileError(
            f"model file {path} keeps tensor data outside the file ({shown}); rnnedge models must be one "
            "self-contained file, and paths inside a model are never opened"
        )


_MODEL_METADATA_PROPS, _ENTRY_KEY, _ENTRY_VALUE = 14, 1, 2  # ModelProto.metadata_props: StringStringEntryProto


def _metadata_props(data: bytes) -> dict[str, str]:
    """The model's ``metadata_props``, read from the protobuf before onnxruntime sees the file."""
    props: dict[str, str] = {}
    for number, wire, a, b in _fields(data, 0, len(data)):
        if number == _MODEL_METADATA_PROPS and wire == 2:
            key, value = _entry(data, a, b)
            props[key] = value
    return props


def _entry(data: bytes, start: int, end: int, errors: str = "replace") -> tuple[str, str]:
    """A ``StringStringEntryProto``'s key and value (``errors="strict"``: invalid UTF-8 raises)."""
    entry = {n: data[x:y].decode("utf-8", errors) for n, w, x, y in _fields(data, start, end) if w == 2}
    return entry.get(_ENTRY_KEY, ""), entry.get(_ENTRY_VALUE, "")


def refuse_fp16_on_cpu(variant: str, path: Path) -> None:
    """fp16 variants are for CUDA: the CPU has no float16 LSTM, and onnxruntime's CPU optimizer crashes on them."""
    if variant == "fp16":
        raise ProviderError(
            f"{path} is an fp16 model, which runs on the CUDA provider only (onnxruntime's CPU LSTM has no "
            "float16); choose the CUDA provider (provider='cuda' in Python, --provider cuda on the command "
            "line), or use the float32 or int8 file on the CPU"
        )
