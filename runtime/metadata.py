"""The contract between export and runtime: what an rnnedge ``.onnx`` file says about itself.

Export writes one JSON document under ``metadata_props[METADATA_KEY]``; the runtime
reads nothing else to build initial state, check inputs and decode outputs. The JSON is
parsed as untrusted data: size-limited, every field type-checked, and a newer
``format_version`` is refused rather than guessed at.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ModelFileError

__all__ = [
    "FORMAT_VERSION",
    "MAX_METADATA_BYTES",
    "METADATA_KEY",
    "MODEL_KINDS",
    "ModelMetadata",
    "Preprocessing",
    "Standardize",
    "StateSpec",
    "TensorSpec",
]

FORMAT_VERSION = 2
# The fields only version 2 has; export omits them when unused, so other files stay version 1.
VERSION_2_FIELDS = ("lengths", "standardize", "tokens")
TOKEN_MODES = ("words", "chars")  # how a language model's text is split; absent means "words"
METADATA_KEY = "rnnedge"
MAX_METADATA_BYTES = 8 * 1024 * 1024
MODEL_KINDS = ("causal_classifier", "noncausal_classifier", "language_model", "tagger")
BATCH_AXIS = "batch"
MAX_FIXED_DIM = 1 << 20  # larger fixed sizes are not a model of ours; refusing them avoids absurd allocations
# Preprocessing outside these bounds turns pixels into infinities in float32: refused rather than run.
MAX_PREPROCESSING_VALUE = 1e6
MIN_PREPROCESSING_STD = 1e-6
_DTYPES = ("float32", "float16", "int64")


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: name, numpy dtype name, and shape.

    Shape entries are ints for fixed sizes and names for dynamic axes
    (``"batch"``, ``"sequence"``, ...).
    """

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{"name", "dtype", "shape"}`` as ``rnnedge info`` and the export manifest show it."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @property
    def batch_axis(self) -> int | None:
        """Index of the ``batch`` axis, or None if the tensor has none."""
        return self.shape.index(BATCH_AXIS) if BATCH_AXIS in self.shape else None


@dataclass(frozen=True)
class StateSpec:
    """One part of the recurrent state: a graph input and the output that updates it.

    The initial value is zeros, with the ``batch`` axis set to the batch size and
    any other named axis (a growing buffer such as a received prefix) set to 0.
    """

    input: TensorSpec
    output: str

    @property
    def name(self) -> str:
        """The graph input's name, which also keys the part in a :class:`State`."""
        return self.input.name

    def as_dict(self) -> dict[str, Any]:
        """``{"input", "output", "dtype", "shape"}`` as ``rnnedge info`` and the export manifest show it."""
        return {"input": self.name, "output": self.output, "dtype": self.input.dtype, "shape": list(self.input.shape)}

    def initial_shape(self, batch: int) -> tuple[int, ...]:
        """Shape of the zero state for ``batch`` sequences."""
        return tuple(batch if d == BATCH_AXIS else (d if isinstance(d, int) else 0) for d in self.input.shape)


@dataclass(frozen=True)
class Preprocessing:
    """How raw inputs become the graph's float input: ``(x * scale - mean) / std``.

    ``scale`` applies to integer pixels only (uint8 0..255 -> 0..1); float inputs
    are taken as already scaled to 0..1.
    """

    scale: float
    mean: float
    std: float


@dataclass(frozen=True)
class Standardize:
    """Per-channel normalisation of raw input values (format version 2): ``(x - mean[f]) / std[f]``.

    ``mean`` and ``std`` hold one number per feature (the training split's statistics). Input is
    taken as raw values: any finite real numbers, not limited to [0, 1].
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the runtime knows about a model, parsed from the file alone."""

    kind: str
    causal: bool
    model_id: str
    input: TensorSpec
    states: tuple[StateSpec, ...]
    outputs: tuple[TensorSpec, ...]
    config: dict[str, Any]
    quality: dict[str, float]
    producer: dict[str, str]
    variant: str = "float32"
    preprocessing: Preprocessing | None = None
    labels: tuple[str, ...] | None = None
    vocabulary: tuple[str, ...] | None = None
    unk_id: int | None = None
    eos_id: int | None = None
    # The lowest version that reads the file: 1 unless a version-2 field is used (to_json then writes 2),
    # so files of the kinds version 1 describes stay readable by older runtimes.
    format_version: int = 1
    notes: dict[str, str] = field(default_factory=dict)
    lengths: TensorSpec | None = None  # version 2: the graph input of per-sequence valid steps
    standardize: Standardize | None = None  # version 2: per-channel normalisation of raw values
    tokens: str | None = None  # version 2: "chars" for a language model of characters (None: words)

    def to_json(self) -> str:
        """Compact, key-sorted JSON: the exact text stored in the model file (unused version-2 fields left out)."""
        values = asdict(self)
        for key in VERSION_2_FIELDS:
            if values[key] is None:
                del values[key]
            else:
                values["format_version"] = max(values["format_version"], 2)
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        """Parse and check metadata JSON; any defect raises :class:`ModelFileError`."""
        size = len(text.encode("utf-8", "replace"))
        if size > MAX_METADATA_BYTES:
            raise ModelFileError(f"rnnedge metadata is {size} bytes, over the {MAX_METADATA_BYTES}-byte limit")
        try:
            raw = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:
            raise ModelFileError(f"rnnedge metadata is not valid JSON: {e}") from None
        return _parse(raw)


def _number(value: int | float, path: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ModelFileError(f"metadata field {path} is out of range: {value!r:.40}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


class _Reader:
    """Typed field access with error messages that name the field path."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, dict):
            raise ModelFileError(f"metadata field {path or '<root>'} must be an object, got {type(raw).__name__}")
        self.raw, self.path = raw, path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, types: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in self.raw or self.raw[key] is None:
            if optional:
                return None
            raise ModelFileError(f"metadata field {self._where(key)} is missing")
        value = self.raw[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise ModelFileError(f"metadata field {self._where(key)} must not be a boolean")
        if not isinstance(value, types):
            raise ModelFileError(f"metadata field {self._where(key)} has type {type(value).__name__}, expected {types}")
        return value

    def sub(self, key: str) -> _Reader:
        return _Reader(self.get(key, dict), self._where(key))


def _tensor(raw: Any, path: str) -> TensorSpec:
    r = _Reader(raw, path)
    dtype = r.get("dtype", str)
    if dtype not in _DTYPES:
        raise ModelFileError(f"metadata field {path}.dtype is {dtype!r}, expected one of {_DTYPES}")
    shape = r.get("shape", list)
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, (int, str)) or (isinstance(d, int) and not 0 <= d <= MAX_FIXED_DIM):
            raise ModelFileError(
                f"metadata field {path}.shape has entry {d!r}; expected sizes in [0, {MAX_FIXED_DIM}] or axis names"
            )
    if not shape or (shape[0] != BATCH_AXIS and not path.startswith("states")):
        raise ModelFileError(f"metadata field {path}.shape must start with the 'batch' axis, got {shape}")
    return TensorSpec(name=r.get("name", str), dtype=dtype, shape=tuple(shape))


def _strings(values: Any, path: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ModelFileError(f"metadata field {path} must be a list of strings")
    return tuple(values)


def _parse(raw: Any) -> ModelMetadata:
    r = _Reader(raw, "")
    version = r.get("format_version", int)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"model metadata has format version {version}, but this rnnedge reads up to version "
            f"{FORMAT_VERSION}; upgrade rnnedge to load it"
        )
    if version < 1:
        raise ModelFileError(f"model metadata has invalid format version {version}")
    kind = r.get("kind", str)
    if kind not in MODEL_KINDS:
        raise ModelFileError(f"metadata field kind is {kind!r}, expected one of {MODEL_KINDS}")
    states = []
    for i, s in enumerate(r.get("states", list)):
        sr = _Reader(s, f"states[{i}]")
        spec = _tensor(sr.get("input", dict), f"states[{i}].input")
        if spec.batch_axis is None:
            raise ModelFileError(f"metadata field states[{i}].input.shape has no 'batch' axis")
        states.append(StateSpec(input=spec, output=sr.get("output", str)))
    pre = None
    if r.get("preprocessing", dict, optional=True) is not None:
        pr = r.sub("preprocessing")
        values = [_number(pr.get(k, (int, float)), f"preprocessing.{k}") for k in ("scale", "mean", "std")]
        scale, _, std = values
        if not (
            all(math.isfinite(v) and abs(v) <= MAX_PREPROCESSING_VALUE for v in values)
            and scale > 0
            and std >= MIN_PREPROCESSING_STD
        ):
            raise ModelFileError(
                f"metadata field preprocessing has invalid values {values}; expected finite scale > 0, mean and std "
                f"with |value| <= {MAX_PREPROCESSING_VALUE:g} and std >= {MIN_PREPROCESSING_STD:g}"
            )
        pre = Preprocessing(*values)
    quality = r.get("quality", dict)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in quality.values()):
        raise ModelFileError("metadata field quality must map names to numbers")
    for k, v in quality.items():
        if not math.isfinite(_number(v, f"quality.{k}")):  # JSON 1e999 parses as infinity
            raise ModelFileError(f"metadata field quality.{k} is {v!r}, expected a finite number")
    producer = r.get("producer", dict)
    notes = r.get("notes", dict, optional=True) or {}
    lengths, standardize = _version_2_fields(r, version)
    vocabulary = _strings(r.raw.get("vocabulary"), "vocabulary")
    meta = ModelMetadata(
        format_version=version,
        kind=kind,
        causal=r.get("causal", bool),
        model_id=r.get("model_id", str),
        input=_tensor(r.get("input", dict), "input"),
        states=tuple(states),
        outputs=tuple(_tensor(o, f"outputs[{i}]") for i, o in enumerate(r.get("outputs", list))),
        config=r.get("config", dict),
        quality={k: _number(v, f"quality.{k}") for k, v in quality.items()},
        producer={str(k): str(v) for k, v in producer.items()},
        variant=r.get("variant", str),
        preprocessing=pre,
        labels=_strings(r.raw.get("labels"), "labels"),
        vocabulary=vocabulary,
        unk_id=r.get("unk_id", int, optional=True),
        eos_id=r.get("eos_id", int, optional=True),
        notes={str(k): str(v) for k, v in notes.items()},
        lengths=lengths,
        standardize=standardize,
        tokens=_token_mode(r),
    )
    _check_consistent(meta)
    return meta


def _version_2_fields(r: _Reader, version: int) -> tuple[TensorSpec | None, Standardize | None]:
    """``lengths`` and ``standardize``: present only in files of format version 2, each checked whole."""
    for key in VERSION_2_FIELDS:
        if r.raw.get(key) is not None and version < 2:
            raise ModelFileError(f"metadata field {key} needs format_version 2, the file says {version}")
    lengths = None
    if r.get("lengths", dict, optional=True) is not None:
        lengths = _tensor(r.raw["lengths"], "lengths")
        if lengths.dtype != "int64" or lengths.shape != (BATCH_AXIS,):
            raise ModelFileError(
                f"metadata field lengths must be int64 of shape ['batch'], got {lengths.dtype} {list(lengths.shape)}"
            )
    standardize = None
    if r.get("standardize", dict, optional=True) is not None:
        sr = r.sub("standardize")
        parts = []
        for key in ("mean", "std"):
            values = sr.get(key, list)
            if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ModelFileError(f"metadata field standardize.{key} must be a non-empty list of numbers")
            numbers = tuple(_number(v, f"standardize.{key}") for v in values)
            if not all(math.isfinite(v) and abs(v) <= MAX_PREPROCESSING_VALUE for v in numbers):
                raise ModelFileError(
                    f"metadata field standardize.{key} has values outside [-{MAX_PREPROCESSING_VALUE:g}, "
                    f"{MAX_PREPROCESSING_VALUE:g}] or not finite"
                )
            parts.append(numbers)
        mean, std = parts
        if len(mean) != len(std):
            raise ModelFileError(f"metadata field standardize has {len(mean)} means and {len(std)} stds")
        if min(std) < MIN_PREPROCESSING_STD:
            raise ModelFileError(
                f"metadata field standardize.std has {min(std):g}, expected >= {MIN_PREPROCESSING_STD:g}"
            )
        standardize = Standardize(mean, std)
    return lengths, standardize


def _token_mode(r: _Reader) -> str | None:
    """``tokens``: how a language model splits text (absent: words, as every version-1 file)."""
    tokens = r.get("tokens", str, optional=True)
    if tokens is not None and tokens not in TOKEN_MODES:
        raise ModelFileError(f"metadata field tokens is {tokens!r}, expected one of {TOKEN_MODES}")
    return tokens  # type: ignore[no-any-return]


def _check_consistent(meta: ModelMetadata) -> None:
    """What each kind of model needs from its metadata, so the runtime never meets a contradiction."""
    names = [meta.input.name] + [s.name for s in meta.states] + ([meta.lengths.name] if meta.lengths else [])
    outputs = [o.name for o in meta.outputs] + [s.output for s in meta.states]
    if len(set(names)) != len(names) or len(set(outputs)) != len(outputs):
        raise ModelFileError(f"metadata names inputs {names} and outputs {outputs}; each name must appear once")
    by_name = {o.name: o for o in meta.outputs}
    if meta.kind == "language_model":
        vocabulary = meta.vocabulary
        if not vocabulary:
            raise ModelFileError("a language model's metadata must carry its vocabulary")
        repeated = [w for w, n in Counter(vocabulary).items() if n > 1]
        if repeated:
            raise ModelFileError(
                f"metadata field vocabulary repeats {len(repeated)} word(s), e.g. {repeated[:5]}; expected each once"
            )
        for key in ("unk_id", "eos_id"):
            value = getattr(meta, key)
            if value is None or not 0 <= value < len(vocabulary):
                raise ModelFileError(f"metadata field {key} is {value}, expected an id in [0, {len(vocabulary)})")
        if meta.tokens == "chars":
            specials = {meta.unk_id, meta.eos_id}
            long = [w for i, w in enumerate(vocabulary) if len(w) != 1 and i not in specials]
            if long or meta.unk_id == meta.eos_id:
                raise ModelFileError(
                    f"metadata field vocabulary of a character model (tokens 'chars') must hold single characters "
                    f"besides <unk> and <eos> (two different ids), got {long[:5]}"
                )
        logits = by_name.get("logits")
        if meta.input.dtype != "int64" or len(meta.input.shape) != 2:
            raise ModelFileError(f"a language model's input must be int64 (batch, sequence), got {meta.input}")
        if logits is None or len(logits.shape) != 3 or logits.shape[2] != len(vocabulary):
            raise ModelFileError(
                f"a language model needs output logits (batch, sequence, {len(vocabulary)}) to match its "
                f"vocabulary, got {logits}"
            )
        probs = by_name.get("next_probs")  # optional: files from before it existed lack it
        if probs is not None and (len(probs.shape) != 2 or probs.shape[1] != len(vocabulary)):
            raise ModelFileError(
                f"a language model needs output next_probs (batch, {len(vocabulary)}) to match its vocabulary, "
                f"got {probs}"
            )
        return
    if meta.labels is None:
        raise ModelFileError("a classifier's metadata must carry its class labels")
    if meta.input.dtype != "float32" or len(meta.input.shape) != 3 or not isinstance(meta.input.shape[2], int):
        raise ModelFileError(f"a classifier's input must be float32 (batch, sequence, features), got {meta.input}")
    if meta.standardize is not None:
        if meta.preprocessing is not None:
            raise ModelFileError("metadata has both preprocessing and standardize; a classifier takes one of them")
        if len(meta.standardize.mean) != meta.input.shape[2]:
            raise ModelFileError(
                f"metadata field standardize has {len(meta.standardize.mean)} values per channel, the input has "
                f"{meta.input.shape[2]} features"
            )
    # A tagger (kind "tagger") gives one distribution per frame: (batch, sequence, classes), and is causal.
    axes = ("batch", "sequence") if meta.kind == "tagger" else ("batch",)
    if meta.kind == "tagger" and (not meta.causal or meta.lengths is None):
        raise ModelFileError("a tagger's metadata must say causal: true and name its lengths input")
    for name in ("logits", "probs"):
        out = by_name.get(name)
        if out is None or len(out.shape) != len(axes) + 1 or out.shape[-1] != len(meta.labels):
            raise ModelFileError(
                f"a {'tagger' if len(axes) > 1 else 'classifier'} needs output {name} ({', '.join(axes)}, "
                f"{len(meta.labels)}) to match its labels, got {out}"
            )
