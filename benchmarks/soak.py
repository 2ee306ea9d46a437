"""Bounded soak: thousands of stream lifetimes on one model, throughput and memory over time.

    python benchmarks/soak.py MODEL.onnx [--minutes 3] [--window 15] [--threads 1] [--text FILE] [--seed 0]

One loaded model; stream after stream is created, fed a random number of tokens (5-60) in random
chunks (1-8), now and then branched (``copy``), saved and restored (``state``) and asked for its
``top_k``, then dropped. For a language model the tokens are consecutive words of the PTB
validation text from a random place (``$RNNEDGE_DATA/ptb/ptb.valid.txt``, else ``--text``, else
random ids), fed as ids or as a string of words; for a classifier they are random uint8 rows.

Every ``--window`` seconds one line: stream lifetimes, tokens/s, median and 99th-percentile time per
``feed``, resident memory (``/proc/self/statm``) and its peak (``getrusage``). At the end: the last
window's throughput against the first's and the growth of resident memory from the end of the
first window to the end of the last, with a verdict (defaults: last window ≥ 0.9 × the first, growth
< 5 %). A warm-up of a few seconds runs first, untimed, so lazy initialisation is not counted as
degradation. Only numpy, onnxruntime and ``rnnedge.runtime`` are used (the script checks that torch
never came in). Throughput on a shared machine moves with the other load: rerun before reading a
failed throughput verdict as a leak.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from results import Results, add_json_option

from rnnedge.runtime import LanguageModel, Model, load

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
REPO = Path(__file__).resolve().parents[1]


def rss_bytes() -> int | None:
    """Resident memory of this process now (Linux ``/proc``), or None where there is no ``/proc``."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return None


def peak_rss_bytes() -> int:
    """Largest resident memory this process has had.

    ``ru_maxrss`` (KiB on Linux, bytes on macOS) is a high-water mark the kernel updates lazily, so it
    can trail the current resident size: the larger of the two is reported.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(peak if sys.platform == "darwin" else peak * 1024, rss_bytes() or 0)


@dataclass
class Window:
    """What one time window saw."""

    start: float
    lifetimes: int = 0
    tokens: int = 0
    end: float = 0.0
    rss: int | None = None
    peak: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.end - self.start, 1e-9)


class Workload:
    """One stream lifetime at a time, drawn from a seeded generator."""

    def __init__(self, model: Model, rng: np.random.Generator, text: Path | None) -> None:
        self.model, self.rng = model, rng
        self.is_lm = isinstance(model, LanguageModel)
        if isinstance(model, LanguageModel):
            if text is not None and text.is_file():
                words = [w for line in text.read_text().splitlines() for w in (*line.split(), "<eos>")]
                self.source = f"{len(words)} words of {text}"
                self.words: list[str] = words
                self.ids = model.encode(words)  # (N,) int64
            else:
                self.source = "random ids (no text file found)"
                self.ids = rng.integers(0, model.vocab_size, 100_000, dtype=np.int64)
                self.words = [model.vocabulary[i] for i in self.ids]
        else:
            width = model.metadata.input.shape[-1]
            assert isinstance(width, int)
            self.source = f"random uint8 rows of {width}"
            self.rows = rng.integers(0, 256, (100_000, width), dtype=np.uint8)

    def _chunk(self, at: int, size: int) -> object:
        """Tokens ``at:at+size``: ids or (a third of the time) a string of words; rows for a classifier."""
        if not self.is_lm:
            return self.rows[at : at + size]
        if self.rng.random() < 1 / 3:
            return " ".join(self.words[at : at + size])
        return self.ids[at : at + size]

    def lifetime(self, timed: Callable[..., object]) -> int:
        """Create a stream, feed it, branch/restore/top_k it now and then, drop it; return tokens fed.

        ``timed(fn, *args)`` calls ``fn(*args)`` and records how long it took.
        """
        rng = self.rng
        total = self.ids.shape[0] if self.is_lm else self.rows.shape[0]
        length = int(rng.integers(5, 61))
        at = int(rng.integers(0, total - length - 8))
        stream = self.model.stream()
        pos = tokens = 0
        while pos < length:
            size = min(int(rng.integers(1, 9)), length - pos)
            timed(stream.feed, self._chunk(at + pos, size))
            pos += size
            tokens += size
            if rng.random() < 0.1:
                assert len(stream.top_k(5)) == 5
            if rng.random() < 0.05:  # branch: a copy explores a continuation, the original is untouched
                branch = stream.copy()
                extra = int(rng.integers(1, 9))
                timed(branch.feed, self._chunk(at + pos, extra))
                tokens += extra
                del branch
            if rng.random() < 0.05:  # save the state, go on, restore it
                saved = stream.state
                timed(stream.feed, self._chunk(at + pos, 1))
                stream.state = saved
                tokens += 1
        del stream
        return tokens


def soak(
    model_path: Path,
    minutes: float,
    window_s: float,
    threads: int,
    text: Path | None,
    seed: int,
    results: Results | None = None,
) -> bool:
    model = load(model_path, threads=threads)
    workload = Workload(model, np.random.default_rng(seed), text)
    print(f"soak: {model_path.name} ({model.kind}), {minutes:g} min, windows of {window_s:g} s, {threads} thread(s)")
    print(f"      tokens: {workload.source}; 5-60 tokens a stream, chunks of 1-8")

    feeds: list[float] = []  # seconds per feed call, this window

    def timed(call: Callable[..., object], *args: object) -> object:
        started = time.perf_counter()
        result = call(*args)
        feeds.append(time.perf_counter() - started)
        return result

    warmup_end = time.monotonic() + min(5.0, minutes * 60 / 10)
    while time.monotonic() < warmup_end:
        workload.lifetime(timed)
    rss_after_warmup = rss_bytes()

    print(f"{'window':>6} {'t (s)':>6} {'streams':>8} {'tokens/s':>9} {'feed p50':>9} {'feed p99':>9} {'RSS MB':>8}")
    windows: list[Window] = []
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        window = Window(start=time.monotonic())
        feeds.clear()
        window_end = min(window.start + window_s, deadline)
        while time.monotonic() < window_end:
            window.tokens += workload.lifetime(timed)
            window.lifetimes += 1
        window.end, window.rss, window.peak = time.monotonic(), rss_bytes(), peak_rss_bytes()
        windows.append(window)
        p50, p99 = np.percentile(feeds, [50, 99]) * 1e6 if feeds else (float("nan"), float("nan"))
        rss = f"{window.rss / 1e6:8.1f}" if window.rss is not None else f"{'n/a':>8}"
        elapsed = window.end - windows[0].start
        print(
            f"{len(windows):>6} {elapsed:>6.0f} {window.lifetimes:>8} {window.tokens_per_s:>9.0f} "
            f"{p50:>7.0f}µs {p99:>7.0f}µs {rss}",
            flush=True,
        )

    # A last window cut short by the deadline is too noisy to judge: fold it into the previous one.
    if len(windows) > 2 and windows[-1].end - windows[-1].start < window_s / 2:
        short = windows.pop()
        last = windows[-1]
        last.lifetimes, last.tokens, last.end = last.lifetimes + short.lifetimes, last.tokens + short.tokens, short.end
        last.rss, last.peak = short.rss, max(last.peak, short.peak)
        print(f"(window {len(windows) + 1} ran {short.end - short.start:.1f} s: counted with window {len(windows)})")
    model.close()
    first, last = windows[0], windows[-1]
    lifetimes, tokens = sum(w.lifetimes for w in windows), sum(w.tokens for w in windows)
    ratio = last.tokens_per_s / max(first.tokens_per_s, 1e-9)
    print(f"total: {lifetimes} stream lifetimes, {tokens} tokens in {last.end - first.start:.0f} s")
    peak = max([w.peak for w in windows])
    print(f"peak RSS: {peak / 1e6:.1f} MB (after warm-up {(rss_after_warmup or 0) / 1e6:.1f} MB)")
    rates = [w.tokens_per_s for w in windows]
    print(f"throughput, last window / first: {last.tokens_per_s:.0f} / {first.tokens_per_s:.0f} = {ratio:.3f}")
    print(f"throughput over all windows: {min(rates):.0f} to {max(rates):.0f} tokens/s (median {np.median(rates):.0f})")
    passed = ratio >= 0.9
    if first.rss is not None and last.rss is not None:
        growth = (last.rss - first.rss) / first.rss
        print(f"RSS growth, end of first window to end of last: {growth * 100:+.2f} %")
        passed = passed and growth < 0.05
    else:
        print("RSS growth: n/a (no /proc/self/statm)")
    print(f"torch imported: {'yes' if 'torch' in sys.modules else 'no'}")
    print(f"{'PASS' if passed else 'FAIL'}: last-window throughput >= 0.9 x first and RSS growth < 5 %")
    if results is not None:
        table = results.table(
            f"Windows of {window_s:.0f} s", ["window", "end (s)", "stream lifetimes", "tokens/s", "RSS (MB)"]
        )
        for i, w in enumerate(windows, start=1):
            table.add(i, w.end - first.start, w.lifetimes, w.tokens_per_s, w.rss / 1e6 if w.rss is not None else None)
        growth_text = f"{growth * 100:+.2f} %" if first.rss is not None and last.rss is not None else "n/a"
        results.note(
            f"{lifetimes:,} stream lifetimes and {tokens:,} tokens in {last.end - first.start:.0f} s; peak RSS "
            f"{peak / 1e6:.1f} MB; throughput last window / first {ratio:.3f}; RSS growth {growth_text}; "
            f"{'PASS' if passed else 'FAIL'} (last window >= 0.9 x first, RSS growth < 5 %)."
        )
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an rnnedge .onnx file (language model or classifier)")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the timed soak (default 3)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds per reported window (default 15)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    default_text = Path(os.environ.get("RNNEDGE_DATA", REPO.parent / "shared" / "data")) / "ptb" / "ptb.valid.txt"
    parser.add_argument("--text", type=Path, default=default_text, help="text to feed a language model")
    parser.add_argument("--seed", type=int, default=0)
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.window <= 0 or args.threads < 1:
        parser.error("--minutes and --window must be positive, --threads at least 1")
    results = Results("soak", __doc__, models=[args.model])
    passed = soak(args.model, args.minutes, args.window, args.threads, args.text, args.seed, results)
    results.write(args.json)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
