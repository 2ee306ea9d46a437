"""Interleaved timing: every contender runs in turn, round after round, so machine noise hits all alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved(
    contenders: dict[str, Callable[[], object]], *, rounds: int = 15, inner: int = 200
) -> dict[str, list[float]]:
    """Seconds per call of each contender: ``rounds`` samples, each the mean of ``inner`` calls."""
    for fn in contenders.values():  # warm up
        for _ in range(max(inner // 10, 3)):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - start) / inner)
    return samples


def report(samples: dict[str, list[float]], baseline: str, unit: float = 1e-6, unit_name: str = "µs") -> str:
    """A table of median, spread (interquartile range) and ratio to ``baseline``, per contender."""
    base = statistics.median(samples[baseline])
    lines = [f"{'contender':<34} {'median':>10} {'IQR':>9}  {'x ' + baseline:>12}"]
    for name, values in samples.items():
        q = statistics.quantiles(values, n=4)
        med = statistics.median(values)
        lines.append(
            f"{name:<34} {med / unit:>8.1f}{unit_name} {(q[2] - q[0]) / unit:>7.1f}{unit_name}  {med / base:>11.2f}x"
        )
    return "\n".join(lines)
