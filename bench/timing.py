"""Timing contenders interleaved, round by round, and summarising them as medians with their spread."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rnnedge.errors import ConfigError

BARE = "bare onnxruntime"  # the baseline contender of every comparison: a hand-written onnxruntime loop


@dataclass(frozen=True)
class Summary:
    """Robust statistics of repeated timings, in seconds per unit (step, token, row, run)."""

    median: float
    q1: float
    q3: float
    samples: int

    @property
    def iqr(self) -> float:
        """Interquartile range: the spread of the middle half of the samples."""
        return self.q3 - self.q1

    def as_dict(self, suffix: str = "_s") -> dict[str, float]:
        """``{"median_s", "q1_s", "q3_s", "iqr_s", "samples"}`` for JSON output (``suffix`` names the unit)."""
        return {
            f"median{suffix}": self.median,
            f"q1{suffix}": self.q1,
            f"q3{suffix}": self.q3,
            f"iqr{suffix}": self.iqr,
            "samples": self.samples,
        }


def summarize(values: Sequence[float]) -> Summary:
    """Median and quartiles of ``values`` (one value gives a zero spread); :class:`ConfigError` for none."""
    if not values:
        raise ConfigError("no samples to summarize: time at least one round")
    if len(values) == 1:
        return Summary(values[0], values[0], values[0], 1)
    q = statistics.quantiles(values, n=4, method="inclusive")
    return Summary(statistics.median(values), q[0], q[2], len(values))


def calibrate(fn: Callable[[], object], target_s: float, *, warmup: int = 2) -> int:
    """How many calls of ``fn`` take about ``target_s`` (at least 1), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    one = max(time.perf_counter() - start, 1e-9)
    return max(1, round(target_s / one))


def interleaved(
    contenders: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    target_s: float = 0.02,
    warmup: int = 3,
    pause_s: float = 0.0,
    inner: int | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each contender: ``rounds`` samples, each the mean over about ``target_s`` of calls.

    All contenders run once per round, in turn, so slow phases of the machine hit every one.
    ``pause_s`` of untimed sleep after each sample lets the idle threads of one contender's
    thread pool stop spinning before the next contender runs. ``inner`` fixes the calls per
    sample instead (e.g. one 28-row sequence), after ``warmup`` calls of each contender.
    """
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    if inner is None:
        calls = {name: calibrate(fn, target_s, warmup=warmup) for name, fn in contenders.items()}
    else:
        for fn in contenders.values():
            for _ in range(warmup):
                fn()
        calls = dict.fromkeys(contenders, inner)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            n = calls[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
            if pause_s > 0:
                time.sleep(pause_s)
    return samples


def format_table(
    summaries: Mapping[str, Summary], baseline: str | None, *, scale: float = 1e6, unit: str = "µs"
) -> str:
    """A text table: median, IQR and the ratio to ``baseline`` (when given) per contender."""
    width = max(len("contender"), *(len(n) for n in summaries))
    head = f"{'contender':<{width}}  {'median':>12}  {'IQR':>10}"
    if baseline is not None:
        head += f"  {'× ' + baseline:>20}"
    lines = [head]
    base = summaries[baseline].median if baseline is not None else math.nan
    for name, s in summaries.items():
        line = f"{name:<{width}}  {s.median * scale:>9.1f} {unit:<2}  {s.iqr * scale:>7.1f} {unit:<2}"
        if baseline is not None:
            line += f"  {s.median / base:>20.2f}"
        lines.append(line)
    return "\n".join(lines)
