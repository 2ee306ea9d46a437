"""Proof that an exported file computes what the PyTorch model computes, before it is kept.

Runs the file through :mod:`rnnedge.runtime` (the very code users run) and compares every
output and every state part with PyTorch: whole sequences over several batch sizes and
lengths, then random chunkings of one long sequence against the whole prefix. Every
mismatch is collected, typed (:class:`MismatchKind`: shape, value, stream vs whole) and
measured against its tolerance, into one :class:`ParityError`.

Why tolerances follow each quantity's scale: float32 arithmetic in onnxruntime and in
PyTorch rounds differently, and the difference grows with the size of what is computed. A
probability is at most 1, but the classifier's ``h_sum`` state is a running sum of up to 60
LSTM outputs (each in [-1, 1]) and its logits or an LSTM's cell state can reach tens. One
absolute ``1e-4`` for all of them refused correctly trained models (``h_sum`` off by 3.8e-4
after 60 rows, 6e-6 a row) while being far looser, relative to its size, on a probability.
So each quantity is compared as ``|got - want| <= atol * scale + rtol * |want|``, where
``scale`` is the quantity's natural size as its kind's :class:`Reference` declares it:
1 for bounded values (probabilities, ``h``), the number of steps summed for a running sum,
the largest magnitude for unbounded values (logits, ``c``). What users consume
(probabilities, the state they pass back) is held to ``atol`` of its own size.
``Tolerances(atol=..., scaled=False)`` (``rnnedge export --atol``) overrides this with one
absolute tolerance for everything, as the field's exporters' ``--atol`` does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from rnnedge.errors import ExportValidationError
from rnnedge.runtime import Model, load

__all__ = [
    "BATCH_SIZES",
    "LENGTHS",
    "Mismatch",
    "MismatchKind",
    "ParityError",
    "ParityReport",
    "Reference",
    "Scale",
    "Tolerances",
    "check_graph_structure",
    "magnitude",
    "running_sum",
    "unit",
    "validate_export",
]

BATCH_SIZES = (1, 3)
LENGTHS = (1, 7, 28, 60)
RAGGED_LENGTHS = (23, 1, 9, 16)  # a padded batch, for graphs that take per-sequence lengths
Arrays = dict[str, np.ndarray]
# A quantity's natural size: (the reference's value, steps fed so far) -> a positive number.
Scale = Callable[[np.ndarray, int], float]


def unit(want: np.ndarray, steps: int) -> float:
    """Bounded by 1: probabilities, an LSTM's hidden output, counts and copied inputs."""
    return 1.0


def running_sum(want: np.ndarray, steps: int) -> float:
    """A sum of one bounded value per step so far: its error grows with the steps summed."""
    return float(max(steps, 1))


def magnitude(want: np.ndarray, steps: int) -> float:
    """Unbounded (logits, an LSTM's cell state): the largest magnitude present, at least 1."""
    return max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0


@dataclass(frozen=True)
class Tolerances:
    """How close is close enough: ``|got - want| <= atol * scale + rtol * |want|``.

    ``scaled=False`` drops the scale: ``atol`` is then one absolute tolerance for every quantity.
    """

    atol: float = 1e-4
    rtol: float = 1e-4
    scaled: bool = True

    @classmethod
    def absolute(cls, atol: float) -> Tolerances:
        """One absolute tolerance for every quantity (``rnnedge export --atol``)."""
        return cls(atol=atol, scaled=False)

    def as_dict(self) -> dict[str, object]:
        """For the manifest."""
        return {"atol": self.atol, "rtol": self.rtol, "scaled": self.scaled}


@dataclass(frozen=True)
class Reference:
    """The PyTorch side of a parity check, in numpy terms.

    ``run(x, state) -> (outputs, new_state)`` with state keyed by the metadata's state
    names; ``make_input(batch, length, rng)`` draws a valid graph input;
    ``sequence_outputs`` names outputs with a time axis (axis 1); ``scales`` gives the
    natural size of each output or state part (by its name; :func:`unit` if not named).
    """

    run: Callable[[np.ndarray, Mapping[str, np.ndarray]], tuple[Arrays, Arrays]]
    make_input: Callable[[int, int, np.random.Generator], np.ndarray]
    sequence_outputs: frozenset[str] = field(default_factory=frozenset)
    scales: Mapping[str, Scale] = field(default_factory=dict)


class MismatchKind(enum.Enum):
    """What went wrong in one comparison."""

    SHAPE = "shape"  # the file gives another shape than PyTorch
    VALUE = "value"  # a whole-sequence run differs from PyTorch beyond tolerance
    STREAM = "stream vs whole"  # chunks fed in turn differ from PyTorch on the whole prefix
    NOT_FINITE = "not finite"  # a variant's output holds NaN or infinity


@dataclass(frozen=True)
class Mismatch:
    """One failed comparison: where, which quantity, the largest difference and how far over its tolerance."""

    kind: MismatchKind
    where: str
    quantity: str
    largest: float = float("nan")
    allowed: float = float("nan")  # the tolerance at the element furthest over it
    over: float = float("nan")  # that element's difference / its tolerance (> 1)
    detail: str = ""

    def __str__(self) -> str:
        if self.kind is not MismatchKind.VALUE and self.kind is not MismatchKind.STREAM:
            return f"{self.where}: {self.quantity} {self.detail}"
        return (
            f"{self.where}: {self.quantity} differs by up to {self.largest:.3g}, {_times(self.over)} its tolerance "
            f"({self.allowed:.3g} there; {self.detail}) [{self.kind.value}]"
        )


def _times(ratio: float) -> str:
    return f"{ratio:.3g}x" if ratio < 1000 else f"{ratio:.2e}x"


class ParityError(ExportValidationError):  # type: ignore[misc, unused-ignore]  # Any in an editable install
    """The exported graph disagrees with PyTorch; ``failures`` holds each typed :class:`Mismatch`."""

    def __init__(self, message: str, failures: list[Mismatch]) -> None:
        super().__init__(message, [str(f) for f in failures])
        self.failures = failures


@dataclass
class ParityReport:
    """How close the exported graph came to PyTorch: checks run, largest differences, failures."""

    tolerances: Tolerances = field(default_factory=Tolerances)
    checks: int = 0
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    # The largest share of its tolerance any element of each quantity used (1.0 = at the limit).
    max_ratio: dict[str, float] = field(default_factory=dict)
    failures: list[Mismatch] = field(default_factory=list)

    @property
    def worst(self) -> float:
        """The largest difference over every compared value."""
        return max(self.max_abs_diff.values(), default=0.0)

    @property
    def margin(self) -> float:
        """The largest share of its tolerance used by any compared value (below 1 passes)."""
        return max(self.max_ratio.values(), default=0.0)

    def record(
        self, where: str, name: str, got: np.ndarray, want: np.ndarray, kind: MismatchKind = MismatchKind.VALUE
    ) -> float | None:
        """Note and return the largest difference of ``got`` from ``want``; None (a failure) if the shapes differ."""
        self.checks += 1
        if got.shape != want.shape:
            detail = f"has shape {got.shape}, the reference gives {want.shape}"
            self.failures.append(Mismatch(MismatchKind.SHAPE, where, name, detail=detail))
            return None
        diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
        self.max_abs_diff[name] = max(self.max_abs_diff.get(name, 0.0), diff)
        return diff

    def compare(
        self,
        where: str,
        name: str,
        got: np.ndarray,
        want: np.ndarray,
        *,
        scale: float = 1.0,
        kind: MismatchKind = MismatchKind.VALUE,
    ) -> None:
        """Record, and fail unless ``got`` is within ``atol * scale + rtol * |want|`` of ``want`` everywhere."""
        diff = self.record(where, name, got, want, kind)
        if diff is None or not got.size:
            return
        tol = self.tolerances
        atol = tol.atol * (scale if tol.scaled else 1.0)
        allowed = atol + tol.rtol * np.abs(want.astype(np.float64))
        ratios = np.abs(got.astype(np.float64) - want) / allowed
        at = int(np.argmax(ratios))
        ratio = float(ratios.flat[at])
        self.max_ratio[name] = max(self.max_ratio.get(name, 0.0), ratio)
        if ratio > 1.0:
            how = (
                f"atol {tol.atol:g}"
                + (f" x scale {scale:.3g}" if tol.scaled else "")
                + f" + rtol {tol.rtol:g} x |value|"
            )
            self.failures.append(Mismatch(kind, where, name, diff, float(allowed.flat[at]), ratio, how))

    def as_dict(self) -> dict[str, object]:
        """Checks, per-value largest differences and the worst, for the manifest; and, where values were held
        to tolerances (not a variant's recorded drift), those tolerances and the largest share of one used."""
        described: dict[str, object] = {"checks": self.checks, "max_abs_diff": self.max_abs_diff, "worst": self.worst}
        if self.max_ratio:
            described.update(tolerances=self.tolerances.as_dict(), margin=self.margin)
        return described


def check_graph_structure(model: onnx.ModelProto) -> list[str]:
    """Native LSTM nodes only: no unrolled loops, no Loop/Scan; every graph output shape declared."""
    problems = []
    ops = [n.op_type for n in model.graph.node]
    if not any(op in ("LSTM", "DynamicQuantizeLSTM", "GRU") for op in ops):
        problems.append("graph has no native LSTM or GRU node")
    for bad in ("Loop", "Scan", "If"):
        if bad in ops:
            problems.append(f"graph contains a {bad} node; the LSTM must be the native op")
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        if not dims or any(not d.dim_param and not d.HasField("dim_value") for d in dims):
            problems.append(f"output {out.name} has no fully declared shape")
    return problems


def _chunking(rng: np.random.Generator, total: int) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(min(int(rng.integers(1, 12)), total - sum(sizes)))
    return sizes


def validate_export(
    path: Path,
    reference: Reference,
    *,
    tolerances: Tolerances | None = None,
    seed: int = 0,
    chunkings: int = 3,
    label: str | None = None,
) -> ParityReport:
    """Check ``path`` against ``reference``; raise :class:`ParityError` listing every mismatch.

    ``label`` is how errors call the file (the export's target, when ``path`` is a temporary file).
    """
    label = label or path.name
    report = ParityReport(tolerances or Tolerances())
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportValidationError(f"{label} fails onnx.checker", [str(e).splitlines()[0]]) from None
    problems = check_graph_structure(onnx.load(str(path)))
    if problems:
        raise ExportValidationError(f"{label}: the exported graph has the wrong structure", problems)

    def scale(name: str, want: np.ndarray, steps: int) -> float:
        return reference.scales.get(name, unit)(want, steps)

    rng = np.random.default_rng(seed)
    with load(path) as model:
        for batch in BATCH_SIZES:
            for length in LENGTHS:
                x = reference.make_input(batch, length, rng)
                state = model.init_state(batch)
                want_out, want_state = reference.run(x, dict(state))
                got_out, got_state = model.step(x, state)
                where = f"batch {batch}, length {length}"
                for name, want in want_out.items():
                    report.compare(where, name, got_out[name], want, scale=scale(name, want, length))
                for name, want in want_state.items():
                    s = scale(name, want, length)
                    report.compare(where, f"state {name}", got_state[name], want, scale=s)
        stream = MismatchKind.STREAM
        for trial in range(chunkings):
            x = reference.make_input(3, max(LENGTHS), rng)
            state = model.init_state(3)
            start = 0
            for size in _chunking(rng, x.shape[1]):
                out, state = model.step(x[:, start : start + size], state)
                start += size
                want_out, want_state = reference.run(x[:, :start], dict(model.init_state(3)))
                where = f"chunking {trial}, after {start} steps"
                for name, want in want_out.items():
                    want = want[:, start - size : start] if name in reference.sequence_outputs else want
                    s = scale(name, want, start)
                    report.compare(where, f"streamed {name}", out[name], want, scale=s, kind=stream)
            for name, want in want_state.items():
                s = scale(name, want, start)
                report.compare(
                    f"chunking {trial}, final", f"streamed state {name}", state[name], want, scale=s, kind=stream
                )
        if model.metadata.lengths is not None:
            _check_lengths(model, reference, report, rng, scale)
    if report.failures:
        raise ParityError(f"{label}: the exported graph does not match PyTorch", report.failures)
    return report


def _check_lengths(
    model: Model, reference: Reference, report: ParityReport, rng: np.random.Generator, scale: Callable[..., float]
) -> None:
    """A graph that takes lengths: a padded batch of different lengths gives, for each sequence, what it alone gives.

    The padding is NaN-free noise (a graph that read it would show). Outputs are compared for every
    model; the state too for a causal one (a non-causal state keeps the padded rows, and its ``step``
    refuses lengths shorter than the chunk).
    """
    lengths = np.array(RAGGED_LENGTHS, dtype=np.int64)
    x = reference.make_input(len(lengths), int(lengths.max()), rng)
    got_out, got_state = model.run(x, model.init_state(len(lengths)), lengths)
    axes = {s.name: s.input.batch_axis for s in model.metadata.states}
    for b, n in enumerate(lengths.tolist()):
        want_out, want_state = reference.run(x[b : b + 1, :n], dict(model.init_state(1)))
        where = f"lengths {lengths.tolist()}, sequence {b} alone ({n} steps)"
        for name, want in want_out.items():
            report.compare(where, f"padded {name}", got_out[name][b : b + 1], want, scale=scale(name, want, n))
        if model.metadata.causal:
            for name, want in want_state.items():
                got = np.take(got_state[name], [b], axis=axes[name])
                report.compare(where, f"padded state {name}", got, want, scale=scale(name, want, n))
