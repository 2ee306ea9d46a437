"""Proof that an exported file computes what the PyTorch model computes, before it is kept.

Runs the file through :mod:`rnnedge.runtime` (the very code users run) and compares every
output and every state part with PyTorch: whole sequences over several batch sizes and
lengths, random chunkings of one long sequence against the whole prefix, and (for graphs
that take lengths) a padded batch against each sequence alone. Every mismatch is collected,
typed (:class:`MismatchKind`: shape, value, stream vs whole) and measured, into one
:class:`ParityError`.

The rule: judged against the exact result. onnxruntime and PyTorch both compute in float32
and both drift from the exact result, the more so on long sequences and on barely trained
models whose state sits where the gates are steep; no fixed tolerance tells that noise from
a wrong graph (a fixed ``1e-4`` refused an MNIST bi-LSTM after 200 steps, with ``h`` off by
1.6e-4 at 60 rows). So each quantity is computed three times: by the file (onnxruntime,
float32), by PyTorch in float32 (how the model was trained and how its author runs it) and by
PyTorch in float64 (the exact result, to float32's eyes). With the distances measured as the
largest absolute difference over the compared array,

    |onnxruntime - exact|  <=  factor * |PyTorch float32 - exact|  +  floor * scale

is accepted: the file may be a few times as far from the truth as PyTorch itself is
(:data:`FACTOR`; both engines round, in other orders and with other kernels), plus a floor
for quantities PyTorch happens to get almost exactly (:data:`FLOOR`, a few float32 roundings
of the quantity's natural size). ``scale`` is that size, as each kind's :class:`Reference`
declares it: 1 for bounded values (probabilities, ``h``), the steps summed for a running sum,
the largest magnitude for unbounded values (logits, ``c``). A wrong graph (gates in another
order, a bias missing, a GRU's reset applied before the product, a direction reversed, a state
not carried) is wrong by orders of magnitude more than float32 noise and is refused
(``tests/export/test_export_judged_exactly.py`` holds both sides).
``Tolerances.absolute(atol)`` (``rnnedge export --atol``) replaces the rule by one absolute
tolerance from the exact result, as the field's exporters' ``--atol`` does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from rnnedge.errors import ExportValidationError
from rnnedge.runtime import Model, load

__all__ = [
    "BATCH_SIZES",
    "FACTOR",
    "FLOOR",
    "LENGTHS",
    "Mismatch",
    "MismatchKind",
    "ParityError",
    "ParityReport",
    "Reference",
    "Run",
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
# How many times PyTorch-float32's own distance from the exact result onnxruntime may be, and the
# floor, per unit of a quantity's scale. Measured (tests/export/test_export_judged_exactly.py): valid
# models reach a ratio of a few; broken graphs are off by 1e3 to 1e7 of PyTorch's distance.
FACTOR = 16.0
FLOOR = 2e-6
Arrays = dict[str, np.ndarray]
# PyTorch's side of one run: (graph input, state by name) -> (outputs by name, new state by name).
Run = Callable[[np.ndarray, Mapping[str, np.ndarray]], tuple[Arrays, Arrays]]
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
    """How close to the exact result is close enough (see the module's docstring for why).

    The rule: ``|onnxruntime - exact| <= factor * |PyTorch float32 - exact| + floor * scale``.
    ``atol`` set (:meth:`absolute`): ``|onnxruntime - exact| <= atol`` for every quantity instead.
    """

    factor: float = FACTOR
    floor: float = FLOOR
    atol: float | None = None

    @classmethod
    def absolute(cls, atol: float) -> Tolerances:
        """One absolute tolerance from the exact result for every quantity (``rnnedge export --atol``)."""
        return cls(atol=atol)

    def allowed(self, pytorch_distance: float, scale: float) -> float:
        """How far from the exact result the file may be, given PyTorch-float32's own distance."""
        if self.atol is not None:
            return self.atol
        return self.factor * pytorch_distance + self.floor * scale

    def describe(self, pytorch_distance: float, scale: float) -> str:
        """The allowance spelled out, for a mismatch's message."""
        if self.atol is not None:
            return f"atol {self.atol:g}; PyTorch float32 is {pytorch_distance:.3g} from it"
        return (
            f"{self.factor:g} x PyTorch float32's own distance {pytorch_distance:.3g} + floor {self.floor:g} "
            f"x scale {scale:.3g}"
        )

    def as_dict(self) -> dict[str, object]:
        """For the manifest."""
        if self.atol is not None:
            return {"atol": self.atol, "against": "PyTorch float64"}
        return {"factor": self.factor, "floor": self.floor, "against": "PyTorch float64"}


@dataclass(frozen=True)
class Reference:
    """The PyTorch side of a parity check, in numpy terms.

    ``run(x, state) -> (outputs, new_state)`` is PyTorch in float32, ``exact`` the same model in
    float64 (outputs as float64 arrays); state is keyed by the metadata's state names.
    ``make_input(batch, length, rng)`` draws a valid graph input; ``sequence_outputs`` names
    outputs with a time axis (axis 1); ``scales`` gives the natural size of each output or state
    part (by its name; :func:`unit` if not named). :func:`rnnedge.export.reference.torch_reference`
    builds one from a module.
    """

    run: Run
    exact: Run
    make_input: Callable[[int, int, np.random.Generator], np.ndarray]
    sequence_outputs: frozenset[str] = field(default_factory=frozenset)
    scales: Mapping[str, Scale] = field(default_factory=dict)

    def both(self, x: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[Arrays, Arrays, Arrays, Arrays]:
        """``run`` and ``exact`` on the same input: float32 outputs and state, then exact outputs and state."""
        out32, state32 = self.run(x, state)
        out64, state64 = self.exact(x, state)
        return out32, state32, out64, state64


class MismatchKind(enum.Enum):
    """What went wrong in one comparison."""

    SHAPE = "shape"  # the file gives another shape than PyTorch
    VALUE = "value"  # a whole-sequence run is further from the exact result than allowed
    STREAM = "stream vs whole"  # chunks fed in turn differ from PyTorch on the whole prefix
    NOT_FINITE = "not finite"  # a variant's output holds NaN or infinity


@dataclass(frozen=True)
class Mismatch:
    """One failed comparison: where, which quantity, its distance from the exact result and how far over."""

    kind: MismatchKind
    where: str
    quantity: str
    largest: float = float("nan")  # the file's largest difference from the exact result
    allowed: float = float("nan")  # what the rule allowed there
    over: float = float("nan")  # largest / allowed (> 1)
    detail: str = ""

    def __str__(self) -> str:
        if self.kind is not MismatchKind.VALUE and self.kind is not MismatchKind.STREAM:
            return f"{self.where}: {self.quantity} {self.detail}"
        return (
            f"{self.where}: {self.quantity} differs from the exact result by up to {self.largest:.3g}, "
            f"{_times(self.over)} what is allowed ({self.allowed:.3g}: {self.detail}) [{self.kind.value}]"
        )


def _times(ratio: float) -> str:
    return f"{ratio:.3g}x" if ratio < 1000 else f"{ratio:.2e}x"


class ParityError(ExportValidationError):  # type: ignore[misc, unused-ignore]  # Any in an editable install
    """The exported graph disagrees with PyTorch; ``failures`` holds each typed :class:`Mismatch`."""

    def __init__(self, message: str, failures: list[Mismatch]) -> None:
        super().__init__(message, [str(f) for f in failures])
        self.failures = failures


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


@dataclass
class ParityReport:
    """How close the exported graph came to the exact result: checks run, largest differences, failures.

    Per quantity: ``max_abs_diff`` (the file's largest difference from the exact result),
    ``pytorch_diff`` (PyTorch-float32's own, largest), ``max_ratio`` (the largest share of its
    allowance used: below 1 passes) and ``distance_ratio`` (the largest file/PyTorch distance
    ratio where PyTorch's distance is above the floor, so that the factor decided).
    """

    tolerances: Tolerances = field(default_factory=Tolerances)
    checks: int = 0
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    pytorch_diff: dict[str, float] = field(default_factory=dict)
    max_ratio: dict[str, float] = field(default_factory=dict)
    distance_ratio: dict[str, float] = field(default_factory=dict)
    failures: list[Mismatch] = field(default_factory=list)

    @property
    def worst(self) -> float:
        """The largest difference over every compared value."""
        return max(self.max_abs_diff.values(), default=0.0)

    @property
    def margin(self) -> float:
        """The largest share of its allowance used by any compared value (below 1 passes)."""
        return max(self.max_ratio.values(), default=0.0)

    @property
    def largest_distance_ratio(self) -> float:
        """The largest ratio of the file's distance from the exact result to PyTorch-float32's, where measured."""
        return max(self.distance_ratio.values(), default=0.0)

    def record(
        self, where: str, name: str, got: np.ndarray, want: np.ndarray, kind: MismatchKind = MismatchKind.VALUE
    ) -> float | None:
        """Note and return the largest difference of ``got`` from ``want``; None (a failure) if the shapes differ."""
        self.checks += 1
        if got.shape != want.shape:
            detail = f"has shape {got.shape}, the reference gives {want.shape}"
            self.failures.append(Mismatch(MismatchKind.SHAPE, where, name, detail=detail))
            return None
        diff = _distance(got, want)
        self.max_abs_diff[name] = max(self.max_abs_diff.get(name, 0.0), diff)
        return diff

    def compare(
        self,
        where: str,
        name: str,
        got: np.ndarray,
        pytorch: np.ndarray,
        exact: np.ndarray,
        *,
        scale: float = 1.0,
        kind: MismatchKind = MismatchKind.VALUE,
    ) -> None:
        """Record, and fail unless ``got`` is as close to ``exact`` as the rule allows given ``pytorch``'s distance."""
        diff = self.record(where, name, got, exact, kind)
        if diff is None:
            return
        if pytorch.shape != exact.shape:  # the reference disagrees with itself: a programming error
            raise ValueError(f"{name}: PyTorch gives {pytorch.shape} in float32 and {exact.shape} in float64")
        theirs = _distance(pytorch, exact)
        self.pytorch_diff[name] = max(self.pytorch_diff.get(name, 0.0), theirs)
        tol = self.tolerances
        allowed = tol.allowed(theirs, scale)
        ratio = diff / allowed
        self.max_ratio[name] = max(self.max_ratio.get(name, 0.0), ratio)
        if theirs > tol.floor * scale:
            self.distance_ratio[name] = max(self.distance_ratio.get(name, 0.0), diff / theirs)
        if ratio > 1.0:
            self.failures.append(Mismatch(kind, where, name, diff, allowed, ratio, tol.describe(theirs, scale)))

    def as_dict(self) -> dict[str, object]:
        """Checks, per-value largest differences and the worst, for the manifest; and, where values were judged
        by the rule (not a variant's recorded drift), the rule, PyTorch's own distances and the largest share
        of an allowance used."""
        described: dict[str, object] = {"checks": self.checks, "max_abs_diff": self.max_abs_diff, "worst": self.worst}
        if self.max_ratio:
            described.update(
                tolerances=self.tolerances.as_dict(),
                pytorch_float32_diff=self.pytorch_diff,
                margin=self.margin,
                largest_distance_ratio=self.largest_distance_ratio,
            )
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
    lengths: Sequence[int] = LENGTHS,
    label: str | None = None,
) -> ParityReport:
    """Check ``path`` against ``reference``; raise :class:`ParityError` listing every mismatch.

    Whole sequences of each of ``lengths`` at each of :data:`BATCH_SIZES`, ``chunkings`` random
    chunkings of a sequence of the longest length, and a padded batch for graphs that take lengths.
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
            for length in lengths:
                x = reference.make_input(batch, length, rng)
                state = model.init_state(batch)
                out32, state32, out64, state64 = reference.both(x, dict(state))
                got_out, got_state = model.step(x, state)
                where = f"batch {batch}, length {length}"
                for name, want in out64.items():
                    s = scale(name, want, length)
                    report.compare(where, name, got_out[name], out32[name], want, scale=s)
                for name, want in state64.items():
                    s = scale(name, want, length)
                    report.compare(where, f"state {name}", got_state[name], state32[name], want, scale=s)
        stream = MismatchKind.STREAM
        for trial in range(chunkings):
            x = reference.make_input(3, max(lengths), rng)
            state = model.init_state(3)
            start = 0
            for size in _chunking(rng, x.shape[1]):
                out, state = model.step(x[:, start : start + size], state)
                start += size
                out32, state32, out64, state64 = reference.both(x[:, :start], dict(model.init_state(3)))
                where = f"chunking {trial}, after {start} steps"
                for name, want in out64.items():
                    mine = out32[name]
                    if name in reference.sequence_outputs:
                        want, mine = want[:, start - size : start], mine[:, start - size : start]
                    s = scale(name, want, start)
                    report.compare(where, f"streamed {name}", out[name], mine, want, scale=s, kind=stream)
            for name, want in state64.items():
                s = scale(name, want, start)
                report.compare(
                    f"chunking {trial}, final",
                    f"streamed state {name}",
                    state[name],
                    state32[name],
                    want,
                    scale=s,
                    kind=stream,
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
    model (a per-step output over the sequence's own steps); the state too for a causal one (a
    non-causal state keeps the padded rows, and its ``step`` refuses lengths shorter than the chunk).
    """
    lengths = np.array(RAGGED_LENGTHS, dtype=np.int64)
    x = reference.make_input(len(lengths), int(lengths.max()), rng)
    got_out, got_state = model.run(x, model.init_state(len(lengths)), lengths)
    axes = {s.name: s.input.batch_axis for s in model.metadata.states}
    for b, n in enumerate(lengths.tolist()):
        out32, state32, out64, state64 = reference.both(x[b : b + 1, :n], dict(model.init_state(1)))
        where = f"lengths {lengths.tolist()}, sequence {b} alone ({n} steps)"
        for name, want in out64.items():
            got = got_out[name][b : b + 1]
            if name in reference.sequence_outputs:
                got = got[:, :n]
            s = scale(name, want, n)
            report.compare(where, f"padded {name}", got, out32[name], want, scale=s)
        if model.metadata.causal:
            for name, want in state64.items():
                got = np.take(got_state[name], [b], axis=axes[name])
                report.compare(where, f"padded state {name}", got, state32[name], want, scale=scale(name, want, n))
