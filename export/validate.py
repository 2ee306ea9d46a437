"""Proof that an exported file computes what the PyTorch model computes, before it is kept.

Runs the file through :mod:`rnnedge.runtime` (the very code users run) and compares every
output and every state part with PyTorch: whole sequences over several batch sizes and
lengths, then random chunkings of one long sequence against the whole prefix. Every
mismatch is collected, with its largest difference, into one :class:`ExportValidationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from rnnedge.errors import ExportValidationError
from rnnedge.runtime import load

__all__ = ["BATCH_SIZES", "LENGTHS", "ParityReport", "Reference", "check_graph_structure", "validate_export"]

BATCH_SIZES = (1, 3)
LENGTHS = (1, 7, 28, 60)
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Reference:
    """The PyTorch side of a parity check, in numpy terms.

    ``run(x, state) -> (outputs, new_state)`` with state keyed by the metadata's state
    names; ``make_input(batch, length, rng)`` draws a valid graph input;
    ``sequence_outputs`` names outputs with a time axis (axis 1).
    """

    run: Callable[[np.ndarray, Mapping[str, np.ndarray]], tuple[Arrays, Arrays]]
    make_input: Callable[[int, int, np.random.Generator], np.ndarray]
    sequence_outputs: frozenset[str] = field(default_factory=frozenset)


@dataclass
class ParityReport:
    """How close the exported graph came to PyTorch: checks run and the largest difference per value."""

    checks: int = 0
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def worst(self) -> float:
        """The largest difference over every compared value."""
        return max(self.max_abs_diff.values(), default=0.0)

    def record(self, where: str, name: str, got: np.ndarray, want: np.ndarray) -> float | None:
        """Note and return the largest difference of ``got`` from ``want``; None (a failure) if the shapes differ."""
        self.checks += 1
        if got.shape != want.shape:
            self.failures.append(f"{where}: {name} has shape {got.shape}, the reference gives {want.shape}")
            return None
        diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
        self.max_abs_diff[name] = max(self.max_abs_diff.get(name, 0.0), diff)
        return diff

    def compare(self, where: str, name: str, got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> None:
        """Record, and fail unless ``got`` is within ``atol + rtol * |want|`` of ``want`` everywhere."""
        diff = self.record(where, name, got, want)
        if diff is not None and not np.allclose(got, want, atol=atol, rtol=rtol):
            self.failures.append(f"{where}: {name} differs by up to {diff:.3g} (atol {atol:g}, rtol {rtol:g})")

    def as_dict(self) -> dict[str, object]:
        """Checks, per-value largest differences and the worst, for the manifest."""
        return {"checks": self.checks, "max_abs_diff": self.max_abs_diff, "worst": self.worst}


def check_graph_structure(model: onnx.ModelProto) -> list[str]:
    """Native LSTM nodes only: no unrolled loops, no Loop/Scan; every graph output shape declared."""
    problems = []
    ops = [n.op_type for n in model.graph.node]
    if not any(op in ("LSTM", "DynamicQuantizeLSTM") for op in ops):
        problems.append("graph has no native LSTM node")
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
    atol: float = 1e-4,
    rtol: float = 1e-4,
    seed: int = 0,
    chunkings: int = 3,
    label: str | None = None,
) -> ParityReport:
    """Check ``path`` against ``reference``; raise :class:`ExportValidationError` listing every mismatch.

    ``label`` is how errors call the file (the export's target, when ``path`` is a temporary file).
    """
    label = label or path.name
    report = ParityReport()
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportValidationError(f"{label} fails onnx.checker", [str(e).splitlines()[0]]) from None
    report.failures.extend(check_graph_structure(onnx.load(str(path))))
    rng = np.random.default_rng(seed)
    model = load(path)
    try:
        for batch in BATCH_SIZES:
            for length in LENGTHS:
                x = reference.make_input(batch, length, rng)
                state = model.init_state(batch)
                want_out, want_state = reference.run(x, dict(state))
                got_out, got_state = model.step(x, state)
                where = f"batch {batch}, length {length}"
                for name, want in want_out.items():
                    report.compare(where, name, got_out[name], want, atol, rtol)
                for name, want in want_state.items():
                    report.compare(where, f"state {name}", got_state[name], want, atol, rtol)
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
                    report.compare(where, f"streamed {name}", out[name], want, atol, rtol)
            for name, want in want_state.items():
                report.compare(f"chunking {trial}, final", f"streamed state {name}", state[name], want, atol, rtol)
    finally:
        model.close()
    if report.failures:
        raise ExportValidationError(f"{label}: the exported graph does not match PyTorch", report.failures)
    return report
