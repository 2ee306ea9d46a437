"""The contract between export and runtime: what an rnnedge ``.onnx`` file says about itself.

Export writes one JSON document under ``metadata_props[METADATA_KEY]``; the runtime
reads nothing else to build initial state, check inputs and decode outputs. Its shape is
data: ``rnnedge.schema.json`` beside this module (a JSON Schema, one section per kind) names
the format version, the kinds, every field and which a kind requires, and this parser takes
those from it. The JSON is parsed as untrusted data: size-limited, every field type-checked,
unknown fields and any other ``format_version`` refused; then each kind's checks across fields
(what a schema cannot say) run.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from .errors import ModelFileError

__all__ = [
    "FORMAT_VERSION",
    "MAX_METADATA_BYTES",
    "METADATA_KEY",
    "MODEL_KINDS",
    "SCHEMA",
    "ModelMetadata",
    "Standardize",
    "StateSpec",
    "TensorSpec",
    "kind_section",
    "register_kind_check",
]


def _read_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("rnnedge.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


SCHEMA: dict[str, Any] = _read_schema()
"""The JSON Schema of the metadata (``rnnedge.schema.json``), the one description every runtime follows."""
FORMAT_VERSION: int = SCHEMA["properties"]["format_version"]["const"]
MODEL_KINDS: tuple[str, ...] = tuple(SCHEMA["properties"]["kind"]["enum"])
# Each kind's section of fields, as the schema's allOf picks it: {"language_model": "language_model", ...}.
_SECTION_OF: dict[str, str] = {
    kind: rule["then"]["$ref"].rsplit("/", 1)[1]
    for rule in SCHEMA["allOf"]
    for kind in rule["if"]["properties"]["kind"].get("enum", [rule["if"]["properties"]["kind"].get("const")])
}
TOKEN_MODES: tuple[str, ...] = tuple(SCHEMA["$defs"]["kinds"]["language_model"]["properties"]["tokens"]["enum"])
VARIANTS: tuple[str, ...] = tuple(SCHEMA["properties"]["variant"]["enum"])
METADATA_KEY = "rnnedge"
MAX_METADATA_BYTES = 8 * 1024 * 1024
BATCH_AXIS = "batch"
_SHAPE_ENTRY = SCHEMA["$defs"]["tensor"]["properties"]["shape"]["items"]["anyOf"][0]
MAX_FIXED_DIM: int = _SHAPE_ENTRY["maximum"]  # larger sizes are not a model of ours: refused, not allocated
# Standardisation outside these bounds turns values into infinities in float32: refused rather than run.
MAX_STANDARDIZE_VALUE: float = SCHEMA["$defs"]["standardize"]["properties"]["std"]["items"]["maximum"]
MIN_STANDARDIZE_STD: float = SCHEMA["$defs"]["standardize"]["properties"]["std"]["items"]["minimum"]
_DTYPES: tuple[str, ...] = tuple(SCHEMA["$defs"]["tensor"]["properties"]["dtype"]["enum"])


def kind_section(kind: str) -> dict[str, Any]:
    """The schema's section of ``kind``'s own fields: ``{"title", "required", "properties", ...}``."""
    section: dict[str, Any] = SCHEMA["$defs"]["kinds"][_SECTION_OF[kind]]
    return section


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
class Standardize:
    """Per-channel normalisation of raw input values: ``(x - mean[f]) / std[f]``.

    ``mean`` and ``std`` hold one number per feature (the training split's statistics). Input is
    taken as raw values: any finite real numbers.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the runtime knows about a model, parsed from the file alone.

    The fields every file has, then each kind's own (None where the file's kind has none): the
    schema's sections say which kind has which.
    """

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
    labels: tuple[str, ...] | None = None  # classifiers
    vocabulary: tuple[str, ...] | None = None  # language models
    unk_id: int | None = None  # language models
    eos_id: int | None = None  # language models
    format_version: int = FORMAT_VERSION
    notes: dict[str, str] = field(default_factory=dict)
    lengths: TensorSpec | None = None  # classifiers: the graph input of per-sequence valid steps
    standardize: Standardize | None = None  # classifiers: per-channel normalisation of raw values
    tokens: str | None = None  # language models: "words" or "chars"

    def to_json(self) -> str:
        """Compact, key-sorted JSON: the exact text stored in the model file (fields that are None left out)."""
        values = {k: v for k, v in asdict(self).items() if v is not None}
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
        number = float(value)
    except OverflowError:
        raise ModelFileError(f"metadata field {path} is out of range: {value!r:.40}") from None
    if not math.isfinite(number):  # JSON 1e999 parses as infinity
        raise ModelFileError(f"metadata field {path} is {number!r}, expected a finite number")
    return number


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


class _Reader:
    """Typed field access with error messages that name the field path."""

    def __init__(self, raw: Any, path: str, fields: tuple[str, ...] | None = None) -> None:
        if not isinstance(raw, dict):
            raise ModelFileError(f"metadata field {path or '<root>'} must be an object, got {type(raw).__name__}")
        self.raw, self.path = raw, path
        unknown = [k for k in raw if fields is not None and k not in fields]
        if unknown:
            raise ModelFileError(
                f"metadata field {self._where(str(unknown[0]))} is not part of format {FORMAT_VERSION}"
                f"{' here' if path else ''} (expected only {', '.join(fields or ())})"
            )

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, types: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in self.raw:
            if optional:
                return None
            raise ModelFileError(f"metadata field {self._where(key)} is missing")
        value = self.raw[key]
        if value is None:
            raise ModelFileError(f"metadata field {self._where(key)} is None (JSON null); leave out a field it lacks")
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise ModelFileError(f"metadata field {self._where(key)} must not be a boolean")
        if not isinstance(value, types):
            raise ModelFileError(f"metadata field {self._where(key)} has type {type(value).__name__}, expected {types}")
        return value

    def sub(self, key: str, fields: tuple[str, ...] | None = None) -> _Reader:
        return _Reader(self.get(key, dict), self._where(key), fields)


_TENSOR_FIELDS = ("name", "dtype", "shape")


def _tensor(raw: Any, path: str) -> TensorSpec:
    r = _Reader(raw, path, _TENSOR_FIELDS)
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


def _strings(r: _Reader, key: str) -> tuple[str, ...] | None:
    values = r.get(key, list, optional=True)
    if values is None:
        return None
    if not values or not all(isinstance(v, str) for v in values):
        raise ModelFileError(f"metadata field {key} must be a list of strings (at least one)")
    return tuple(values)


def _parse(raw: Any) -> ModelMetadata:
    r = _Reader(raw, "")
    version = r.get("format_version", int)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"model metadata has format version {version}, but this rnnedge reads version "
            f"{FORMAT_VERSION}; upgrade rnnedge to load it"
        )
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"model metadata has invalid format version {version}; this rnnedge reads {FORMAT_VERSION}"
        )
    kind = r.get("kind", str)
    if kind not in MODEL_KINDS:
        raise ModelFileError(f"metadata field kind is {kind!r}, expected one of {MODEL_KINDS}")
    section = kind_section(kind)
    r = _Reader(raw, "", (*SCHEMA["properties"], *section["properties"]))  # unknown fields refused
    for key in section["required"]:
        if key not in r.raw:
            raise ModelFileError(f"metadata field {key} is missing: a {section['title']}'s metadata must carry it")
    states = []
    for i, s in enumerate(r.get("states", list)):
        sr = _Reader(s, f"states[{i}]", ("input", "output"))
        spec = _tensor(sr.get("input", dict), f"states[{i}].input")
        if spec.batch_axis is None:
            raise ModelFileError(f"metadata field states[{i}].input.shape has no 'batch' axis")
        states.append(StateSpec(input=spec, output=sr.get("output", str)))
    quality = r.get("quality", dict)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in quality.values()):
        raise ModelFileError("metadata field quality must map names to numbers")
    variant = r.get("variant", str)
    if variant not in VARIANTS:
        raise ModelFileError(f"metadata field variant is {variant!r}, expected one of {VARIANTS}")
    tokens = r.get("tokens", str, optional=True)
    if tokens is not None and tokens not in TOKEN_MODES:
        raise ModelFileError(f"metadata field tokens is {tokens!r}, expected one of {TOKEN_MODES}")
    lengths = None
    if r.get("lengths", dict, optional=True) is not None:
        lengths = _tensor(r.raw["lengths"], "lengths")
        if lengths.dtype != "int64" or lengths.shape != (BATCH_AXIS,):
            raise ModelFileError(
                f"metadata field lengths must be int64 of shape ['batch'], got {lengths.dtype} {list(lengths.shape)}"
            )
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
        producer={str(k): str(v) for k, v in r.get("producer", dict).items()},
        variant=variant,
        labels=_strings(r, "labels"),
        vocabulary=_strings(r, "vocabulary"),
        unk_id=r.get("unk_id", int, optional=True),
        eos_id=r.get("eos_id", int, optional=True),
        notes={str(k): str(v) for k, v in (r.get("notes", dict, optional=True) or {}).items()},
        lengths=lengths,
        standardize=_standardize(r),
        tokens=tokens,
    )
    _check_names(meta)
    _KIND_CHECKS[_SECTION_OF[kind]](meta)
    return meta


def _standardize(r: _Reader) -> Standardize | None:
    if r.get("standardize", dict, optional=True) is None:
        return None
    sr = r.sub("standardize", ("mean", "std"))
    parts = []
    for key in ("mean", "std"):
        values = sr.get(key, list)
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ModelFileError(f"metadata field standardize.{key} must be a non-empty list of numbers")
        numbers = tuple(_number(v, f"standardize.{key}") for v in values)
        if not all(abs(v) <= MAX_STANDARDIZE_VALUE for v in numbers):
            raise ModelFileError(
                f"metadata field standardize.{key} has values outside [-{MAX_STANDARDIZE_VALUE:g}, "
                f"{MAX_STANDARDIZE_VALUE:g}] or not finite"
            )
        parts.append(numbers)
    mean, std = parts
    if len(mean) != len(std):
        raise ModelFileError(f"metadata field standardize has {len(mean)} means and {len(std)} stds")
    if min(std) < MIN_STANDARDIZE_STD:
        raise ModelFileError(f"metadata field standardize.std has {min(std):g}, expected >= {MIN_STANDARDIZE_STD:g}")
    return Standardize(mean, std)


def _check_names(meta: ModelMetadata) -> None:
    names = [meta.input.name] + [s.name for s in meta.states] + ([meta.lengths.name] if meta.lengths else [])
    outputs = [o.name for o in meta.outputs] + [s.output for s in meta.states]
    if len(set(names)) != len(names) or len(set(outputs)) != len(outputs):
        raise ModelFileError(f"metadata names inputs {names} and outputs {outputs}; each name must appear once")


_KIND_CHECKS: dict[str, Callable[[ModelMetadata], None]] = {}


def register_kind_check(section: str) -> Callable[[Callable[[ModelMetadata], None]], Callable[[ModelMetadata], None]]:
    """Make a function the checks across fields of the schema section ``section`` (what JSON Schema cannot say).

    Every section of ``rnnedge.schema.json``'s ``$defs/kinds`` has exactly one; a test holds them equal.
    """

    def add(check: Callable[[ModelMetadata], None]) -> Callable[[ModelMetadata], None]:
        if section not in SCHEMA["$defs"]["kinds"] or section in _KIND_CHECKS:
            raise ValueError(f"{section!r} is not a schema section without checks")
        _KIND_CHECKS[section] = check
        return check

    return add


@register_kind_check("language_model")
def _check_language_model(meta: ModelMetadata) -> None:
    vocabulary = meta.vocabulary
    assert vocabulary is not None and meta.unk_id is not None and meta.eos_id is not None  # required fields
    repeated = [w for w, n in Counter(vocabulary).items() if n > 1]
    if repeated:
        raise ModelFileError(
            f"metadata field vocabulary repeats {len(repeated)} word(s), e.g. {repeated[:5]}; expected each once"
        )
    for key in ("unk_id", "eos_id"):
        value = getattr(meta, key)
        if not 0 <= value < len(vocabulary):
            raise ModelFileError(f"metadata field {key} is {value}, expected an id in [0, {len(vocabulary)})")
    if meta.tokens == "chars":
        specials = {meta.unk_id, meta.eos_id}
        long = [w for i, w in enumerate(vocabulary) if len(w) != 1 and i not in specials]
        if long or meta.unk_id == meta.eos_id:
            raise ModelFileError(
                f"metadata field vocabulary of a character model (tokens 'chars') must hold single characters "
                f"besides <unk> and <eos> (two different ids), got {long[:5]}"
            )
    by_name = {o.name: o for o in meta.outputs}
    logits = by_name.get("logits")
    if meta.input.dtype != "int64" or len(meta.input.shape) != 2:
        raise ModelFileError(f"a language model's input must be int64 (batch, sequence), got {meta.input}")
    if logits is None or len(logits.shape) != 3 or logits.shape[2] != len(vocabulary):
        raise ModelFileError(
            f"a language model needs output logits (batch, sequence, {len(vocabulary)}) to match its "
            f"vocabulary, got {logits}"
        )
    probs = by_name.get("next_probs")
    if probs is None or len(probs.shape) != 2 or probs.shape[1] != len(vocabulary):
        raise ModelFileError(
            f"a language model needs output next_probs (batch, {len(vocabulary)}) to match its vocabulary, got {probs}"
        )


@register_kind_check("classifier")
def _check_classifier(meta: ModelMetadata) -> None:
    labels, standardize = meta.labels, meta.standardize
    assert labels is not None and standardize is not None  # required fields
    if meta.input.dtype != "float32" or len(meta.input.shape) != 3 or not isinstance(meta.input.shape[2], int):
        raise ModelFileError(f"a classifier's input must be float32 (batch, sequence, features), got {meta.input}")
    if len(standardize.mean) != meta.input.shape[2]:
        raise ModelFileError(
            f"metadata field standardize has {len(standardize.mean)} values per channel, the input has "
            f"{meta.input.shape[2]} features"
        )
    by_name = {o.name: o for o in meta.outputs}
    for name in ("logits", "probs"):
        out = by_name.get(name)
        if out is None or len(out.shape) != 2 or out.shape[1] != len(labels):
            raise ModelFileError(
                f"a classifier needs output {name} (batch, {len(labels)}) to match its labels, got {out}"
            )
