"""One model shared by many threads under load: results identical to a sequential run, nothing leaks.

Eight threads each drive a succession of streams (create, feed a few chunks, branch a
copy, drop), a ninth drives a StreamBatch whose members join and leave, all on one
loaded language model for a bounded time. Every result is hashed; the same work is then
replayed on one thread and must give the same hashes, bit for bit.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rnnedge.runtime import ConcurrentUseError, LanguageModel, StreamBatch, load

THREADS = 8
SOAK_SECONDS = float(os.environ.get("RNNEDGE_SOAK_SECONDS", "4"))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _stream_lifetime(model: LanguageModel, seed: int, i: int) -> list[str]:
    """One stream's life: a few chunks of ids, a branch, a top-k; the digests of everything it returned."""
    rng = np.random.default_rng([seed, i])
    stream = model.stream()
    out = []
    for _ in range(int(rng.integers(1, 6))):
        out.append(_digest(stream.feed(rng.integers(0, model.vocab_size, int(rng.integers(1, 4))).tolist())))
    branch = stream.copy()
    out.append(_digest(branch.feed([int(rng.integers(model.vocab_size))])))
    out.append(repr(stream.top_k(3)))
    return out


def _batch_round(model: LanguageModel, seed: int, i: int, group: StreamBatch) -> list[str]:
    """One step of a StreamBatch (kept across rounds) whose members come and go; the digests of its results."""
    rng = np.random.default_rng([seed, i])
    if len(group) < 6:
        group.add(i)
    if rng.random() < 0.3:
        group.remove(next(iter(group)))  # the longest-lived member leaves
    results = group.feed({k: [int(rng.integers(model.vocab_size))] for k in group})
    return [f"{k}:{_digest(v)}" for k, v in results.items()]


def test_shared_model_under_load_matches_sequential_replay(tiny_lm_onnx: Path) -> None:
    model = load(tiny_lm_onnx, threads=1)
    assert isinstance(model, LanguageModel)
    digests: dict[int, list[list[str]]] = {t: [] for t in range(THREADS + 1)}
    errors: list[BaseException] = []
    deadline = time.monotonic() + SOAK_SECONDS
    rss: list[int] = []

    def run(worker: int, work: Callable[[int], list[str]]) -> None:
        try:
            i = 0
            while time.monotonic() < deadline:
                digests[worker].append(work(i))
                i += 1
                if worker == 0 and i % 50 == 0:
                    rss.append(_rss_bytes())
        except BaseException as e:  # reported below: a thread must not die silently
            errors.append(e)

    live_batch = model.stream_batch()
    workers = [
        threading.Thread(target=run, args=(t, lambda i, t=t: _stream_lifetime(model, t, i))) for t in range(THREADS)
    ]
    workers.append(threading.Thread(target=run, args=(THREADS, lambda i: _batch_round(model, THREADS, i, live_batch))))
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=SOAK_SECONDS + 60)
    assert not any(w.is_alive() for w in workers), "a worker hung"
    assert not errors, errors
    assert all(len(d) >= 3 for d in digests.values()), {t: len(d) for t, d in digests.items()}

    # The same work, one worker after another on this thread: bit-identical results.
    replay_batch = model.stream_batch()
    for t in range(THREADS):
        for i, got in enumerate(digests[t]):
            assert _stream_lifetime(model, t, i) == got, f"worker {t}, stream {i}"
    for i, got in enumerate(digests[THREADS]):
        assert _batch_round(model, THREADS, i, replay_batch) == got, f"batch round {i}"

    # Memory: after the first samples, resident size stays flat (no per-stream leak).
    if len(rss) >= 4:
        growth = rss[-1] - rss[len(rss) // 4]
        assert growth < 32 * 1024**2, f"RSS grew {growth / 1024**2:.1f} MiB over the run: {rss}"
    model.close()


def test_two_threads_on_one_stream_are_told_not_corrupted(tiny_lm_onnx: Path) -> None:
    """Misuse is detected: a second thread entering a busy stream gets ConcurrentUseError, never a mixed state."""
    model = load(tiny_lm_onnx, threads=1)
    stream = model.stream()
    fed: list[list[int]] = [[], []]
    refused = [0, 0]
    barrier = threading.Barrier(2)

    def hammer(t: int) -> None:
        barrier.wait()
        for i in range(300):
            ids = [(t * 300 + i) % model.vocab_size]
            try:
                stream.feed(ids)
                fed[t].append(ids[0])
            except ConcurrentUseError:
                refused[t] += 1

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whatever interleaving happened, the state is that of the accepted feeds in some order:
    # its batch size and finiteness are intact and it keeps working.
    assert len(fed[0]) + len(fed[1]) + sum(refused) == 600
    assert np.isfinite(stream.feed([1])).all()
    model.close()


@pytest.mark.parametrize("n", [1, 3])
def test_stream_batch_refuses_concurrent_use(tiny_lm_onnx: Path, n: int) -> None:
    model = load(tiny_lm_onnx, threads=1)
    batch = model.stream_batch()
    for k in range(n):
        batch.add(k)
    batch._lock.acquire()  # another thread is inside feed()
    try:
        with pytest.raises(ConcurrentUseError, match="stream batch"):
            batch.feed({0: [1]})
        with pytest.raises(ConcurrentUseError):
            batch.add("late")
    finally:
        batch._lock.release()
    assert len(batch) == n
    model.close()
