"""Speed measurements a user can run on the base install: ``rnnedge bench MODEL`` is a thin layer over this.

Everything here needs only numpy and onnxruntime. Contenders are timed *interleaved*
(every contender runs once per round, round after round) so that a noisy or shared
machine slows all of them alike and their ratios hold; each is reported as a median with
its interquartile range. Four measurements:

- :func:`step_workload`: per-step streaming at batch 1, a hand-written
  ``InferenceSession.run`` loop ("bare onnxruntime") against rnnedge's ``Model.step``
  and ``Stream.feed``;
- :func:`throughput_workload`: whole sequences in one call (PTB 20 × 35, MNIST 256 × 28);
- :func:`cold_start`: fresh interpreters timing import, load and the first result, and
  their peak resident memory;
- :func:`measure_limits`: the machine's float32 GEMM rate and memory read bandwidth, and
  from them the lower bound of a streaming step (its weights are read once per step).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .classifier import ClassifierModel
from .language import LanguageModel
from .metadata import ModelMetadata
from .model import Model

__all__ = [
    "BARE",
    "GemmShape",
    "Summary",
    "Workload",
    "bare_session",
    "bare_session_from_bytes",
    "calibrate",
    "cold_start",
    "copy_bandwidth",
    "flops_per_position",
    "format_report",
    "format_table",
    "gemm_gflops",
    "interleaved",
    "lstm_gemm_shapes",
    "matmul_model",
    "measure_limits",
    "measure_limits_in_subprocess",
    "ort_gemm_gflops",
    "read_bandwidth",
    "run_bench",
    "run_workload",
    "step_workload",
    "summarize",
    "throughput_workload",
    "weights_per_step",
]

BARE = "bare onnxruntime"
LARGE_BYTES = 128 * 10**6  # a working set larger than the last-level cache of the machines we target
ORT_GEMV_MAX_BYTES = 64 * 10**6  # onnxruntime's copy of a larger weight would cost too much memory


# -- timing -----------------------------------------------------------------------------------
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
    """Median and quartiles of ``values`` (one value gives a zero spread)."""
    if not values:
        raise ValueError("no samples to summarize")
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
        raise ValueError(f"rounds must be >= 1, got {rounds}")
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


# -- workloads ---------------------------------------------------------------------------------
@dataclass
class Workload:
    """Contenders doing the same work; each call of a contender processes ``per_call`` units."""

    name: str
    unit: str
    per_call: int
    batch: int
    length: int
    contenders: dict[str, Callable[[], object]]
    baseline: str = BARE


def bare_session(path: str | os.PathLike[str], threads: int | None) -> ort.InferenceSession:
    """The session a user writes by hand: CPU provider, ``threads`` intra-op threads (``None``: default)."""
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _zero_state(meta: ModelMetadata, batch: int) -> dict[str, np.ndarray]:
    return {s.name: np.zeros(s.initial_shape(batch), dtype=s.input.dtype) for s in meta.states}


def _feature_size(meta: ModelMetadata) -> int:
    size = meta.input.shape[-1]
    if not isinstance(size, int):
        raise ValueError(f"{meta.input.name} has no fixed feature size: {meta.input.shape}")
    return size


def step_workload(model: Model, session: ort.InferenceSession, *, length: int | None = None, seed: int = 0) -> Workload:
    """Streaming at batch 1, one step per call: bare ``session.run`` vs ``Model.step`` vs ``Stream.feed``.

    Each contender call is one sequence of ``length`` single steps (28 rows for a classifier,
    35 words for a language model) from the initial state, so the units are steps.
    The bare loop feeds graph inputs (token ids, normalised rows) and carries the state by
    hand; ``Model.step`` takes the same inputs and checks them and the state; ``Stream.feed``
    takes what a user has (an id, a uint8 row) and returns the prediction (for a language
    model, the graph's ``next_probs``, which the bare loop computes too and fetches or not).
    """
    meta = model.metadata
    rng = np.random.default_rng(seed)
    names = [o.name for o in meta.outputs] + [s.output for s in meta.states]
    n_out = len(meta.outputs)
    state_names = [s.name for s in meta.states]
    zero = _zero_state(meta, 1)
    user_inputs: list[Any]
    if isinstance(model, LanguageModel):
        length = length or 35
        ids = rng.integers(0, model.vocab_size, size=length).astype(np.int64)
        graph_inputs = [ids[t : t + 1][None] for t in range(length)]  # (1, 1) int64 each
        user_inputs = [ids[t : t + 1] for t in range(length)]  # (1,) int64 ids
        feed_label = "rnnedge Stream.feed (id → probs)"
    elif isinstance(model, ClassifierModel):
        length = length or 28
        rows = (rng.random((length, model.feature_size)) * 255).astype(np.uint8)  # (T, F)
        graph_inputs = [model.preprocess(rows[t : t + 1])[None] for t in range(length)]  # (1, 1, F) float32
        user_inputs = list(rows)  # (F,) uint8 each
        feed_label = "rnnedge Stream.feed (uint8 row)"
    else:
        raise TypeError(f"no step workload for a {type(model).__name__}")
    input_name = meta.input.name
    feeds: dict[str, np.ndarray] = {}

    def bare() -> None:
        feeds.update(zero)
        for x in graph_inputs:
            feeds[input_name] = x
            out = session.run(names, feeds)
            for name, value in zip(state_names, out[n_out:], strict=True):
                feeds[name] = value

    def core_step() -> None:
        state = model.init_state(1)
        for x in graph_inputs:
            state = model.step(x, state)[1]

    stream = model.stream()

    def stream_feed() -> None:
        stream.reset()
        for x in user_inputs:
            stream.feed(x)

    contenders: dict[str, Callable[[], object]] = {
        BARE: bare,
        "rnnedge Model.step": core_step,
        feed_label: stream_feed,
    }
    return Workload("step", "step", length, 1, length, contenders)


def throughput_workload(
    model: Model,
    session: ort.InferenceSession,
    *,
    batch: int | None = None,
    length: int | None = None,
    seed: int = 0,
) -> Workload:
    """Whole sequences in one call: PTB-style 20 × 35 tokens, or MNIST-style 256 images × 28 rows.

    Contenders: bare ``session.run`` on graph inputs from a zero state, ``Model.step`` on the
    same inputs, and, for a classifier, ``predict`` on uint8 images (normalisation included).
    """
    meta = model.metadata
    rng = np.random.default_rng(seed)
    names = [o.name for o in meta.outputs] + [s.output for s in meta.states]
    contenders: dict[str, Callable[[], object]] = {}
    if isinstance(model, LanguageModel):
        batch, length, unit = batch or 20, length or 35, "token"
        x = rng.integers(0, model.vocab_size, size=(batch, length)).astype(np.int64)  # (B, T)
    elif isinstance(model, ClassifierModel):
        batch, length, unit = batch or 256, length or 28, "row"
        images = (rng.random((batch, length, model.feature_size)) * 255).astype(np.uint8)  # (B, T, F)
        x = model.preprocess(images)  # (B, T, F) float32
    else:
        raise TypeError(f"no throughput workload for a {type(model).__name__}")
    feeds = {meta.input.name: x, **_zero_state(meta, batch)}
    contenders[BARE] = lambda: session.run(names, feeds)
    contenders["rnnedge Model.step"] = lambda: model.step(x, model.init_state(batch))
    if isinstance(model, ClassifierModel):
        contenders["rnnedge predict (uint8 images)"] = lambda: model.predict(images, batch_size=batch)
    return Workload("throughput", unit, batch * length, batch, length, contenders)


def run_workload(
    workload: Workload, *, rounds: int, target_s: float = 0.02, pause_s: float = 0.0
) -> dict[str, Summary]:
    """Time a workload's contenders interleaved (see :func:`interleaved`); summaries are in seconds per unit."""
    samples = interleaved(workload.contenders, rounds=rounds, target_s=target_s, pause_s=pause_s)
    return {name: summarize([v / workload.per_call for v in values]) for name, values in samples.items()}


# -- cold start --------------------------------------------------------------------------------
_COLD_CHILD = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import onnxruntime as ort
t2 = time.perf_counter()
import json, resource

def maxrss():
    # Linux: VmHWM, this process image's own peak. ru_maxrss would also count the parent's peak
    # at fork time (the kernel carries it across fork and exec), so a large parent would show.
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r if sys.platform == "darwin" else r * 1024

mode, path, threads, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
threads = None if threads == "default" else int(threads)
rss_imports = maxrss()
if mode == "rnnedge":
    t3 = time.perf_counter()
    from rnnedge.runtime import ClassifierModel, load
    t4 = time.perf_counter()
    model = load(path, threads=threads)
    t5 = time.perf_counter()
    if isinstance(model, ClassifierModel):
        x = np.zeros(model.feature_size, np.uint8)
    else:
        x = np.array([model.eos_id], np.int64)
    stream = model.stream()
    stream.feed(x)
    t6 = time.perf_counter()
    for _ in range(steps):
        stream.feed(x)
else:
    t3 = t4 = time.perf_counter()
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    t5 = time.perf_counter()
    types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else (1 if d in ("batch", "sequence") else 0) for d in i.shape]
        feeds[i.name] = np.zeros(shape, types[i.type])
    outputs = [o.name for o in sess.get_outputs()]
    states = [n for n in feeds if n + "_out" in outputs]
    out = dict(zip(outputs, sess.run(outputs, feeds)))
    t6 = time.perf_counter()
    for _ in range(steps):
        feeds.update({n: out[n + "_out"] for n in states})
        out = dict(zip(outputs, sess.run(outputs, feeds)))
t7 = time.perf_counter()
print(json.dumps({
    "import_numpy_s": t1 - t0, "import_onnxruntime_s": t2 - t1, "import_rnnedge_s": t4 - t3,
    "load_s": t5 - t4, "first_result_s": t6 - t5, "stream_steps_s": t7 - t6,
    "max_rss_after_imports_bytes": rss_imports, "max_rss_bytes": maxrss(),
}))
"""

_COLD_PHASES = ("import_numpy_s", "import_onnxruntime_s", "import_rnnedge_s", "load_s", "first_result_s")


def cold_start(
    path: str | os.PathLike[str],
    *,
    runs: int = 10,
    threads: int | None = None,
    steps: int = 100,
    python: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Cold start of rnnedge and of a bare onnxruntime program, each in ``runs`` fresh interpreters.

    Per mode (``"rnnedge"``, ``"bare onnxruntime"``) the median of every phase: importing
    numpy, then onnxruntime (reported apart: it is the same for both), then for rnnedge
    ``import rnnedge.runtime``; loading the model; the first result (a stream fed one row or
    one id); ``cold_s``, the sum of the last three (import of rnnedge, load, first result);
    ``process_s``, the whole process wall time seen from outside; and peak resident memory
    after the imports and after streaming ``steps`` more steps (Linux: ``VmHWM`` of the
    child's own image, since ``getrusage``'s ``ru_maxrss`` also carries the parent's peak
    across fork and exec; elsewhere ``ru_maxrss``). The runs alternate between the two modes.
    """
    exe = python or sys.executable
    raw: dict[str, list[dict[str, float]]] = {"rnnedge": [], BARE: []}
    env = dict(os.environ)
    for _ in range(runs):
        for mode in raw:
            child_mode = "rnnedge" if mode == "rnnedge" else "bare"
            args = [exe, "-c", _COLD_CHILD, child_mode, str(path), str(threads or "default"), str(steps)]
            start = time.perf_counter()
            proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
                raise RuntimeError(f"cold-start child ({child_mode}) failed with status {proc.returncode}: {tail[0]}")
            values: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
            values["process_s"] = wall
            values["cold_s"] = values["import_rnnedge_s"] + values["load_s"] + values["first_result_s"]
            raw[mode].append(values)
    result: dict[str, dict[str, Any]] = {}
    for mode, rows in raw.items():
        times = {k: summarize([r[k] for r in rows]).as_dict() for k in [*_COLD_PHASES, "cold_s", "process_s"]}
        memory = {
            k: summarize([r[k] for r in rows]).as_dict("_bytes")
            for k in ("max_rss_after_imports_bytes", "max_rss_bytes")
        }
        result[mode] = {**times, **memory}
    return result


# -- machine limits ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GemmShape:
    """One matrix product ``(m, k) @ (k, n)`` that a forward pass runs ``count`` times."""

    label: str
    m: int
    k: int
    n: int
    count: int = 1

    @property
    def flops(self) -> int:
        """Multiply-adds counted as two operations, over all ``count`` products."""
        return 2 * self.m * self.k * self.n * self.count


def _model_config(meta: ModelMetadata) -> dict[str, Any]:
    model = meta.config.get("model")
    if not isinstance(model, dict):
        raise ValueError("the model's metadata has no model configuration")
    return model


def _layers(meta: ModelMetadata) -> list[tuple[int, int, int]]:
    """``(input size, hidden size, directions)`` of every LSTM layer, from the metadata's configuration."""
    cfg = _model_config(meta)
    hidden = int(cfg["hidden_size"])
    if meta.kind == "language_model":
        return [(hidden, hidden, 1)] * int(cfg.get("num_layers", 1))
    return [(int(cfg.get("input_size", _feature_size(meta))), hidden, 2 if cfg.get("bidirectional") else 1)]


def _head(meta: ModelMetadata) -> tuple[int, int]:
    """``(in, out)`` of the output layer."""
    cfg = _model_config(meta)
    hidden = int(cfg["hidden_size"])
    if meta.kind == "language_model":
        return hidden, int(cfg["vocab_size"])
    return hidden * (2 if cfg.get("bidirectional") else 1), int(cfg.get("num_classes", 10))


def weights_per_step(meta: ModelMetadata) -> int:
    """Bytes of weights one streaming step at batch 1 reads, estimated from the metadata's configuration.

    Every LSTM layer's input and recurrent matrices (``4H × in`` and ``4H × H``) and biases
    (``8H``), and the output layer; the one embedding row a language model reads is left
    out. float32 files: 4 bytes a weight; fp16 files: 2; int8 files: 1 byte a matrix entry,
    biases stay float32 (scales and zero points are negligible).
    """
    matrix_bytes = {"int8": 1, "fp16": 2}.get(meta.variant, 4)
    bias_bytes = 2 if meta.variant == "fp16" else 4
    total = 0
    for inp, hidden, directions in _layers(meta):
        total += directions * (4 * hidden * (inp + hidden) * matrix_bytes + 8 * hidden * bias_bytes)
    head_in, head_out = _head(meta)
    return total + head_in * head_out * matrix_bytes + head_out * bias_bytes


def flops_per_position(meta: ModelMetadata) -> int:
    """Floating-point operations per token (language model) or row (classifier) of a whole-sequence forward.

    The LSTM's gate products ``2 · 4H · (in + H)`` per layer and direction, plus, for a
    language model, the output projection ``2 · H · V`` at every position (a classifier's
    head runs once per sequence and is left out). Element-wise gate work is not counted.
    """
    flops = sum(d * 2 * 4 * h * (i + h) for i, h, d in _layers(meta))
    if meta.kind == "language_model":
        head_in, head_out = _head(meta)
        flops += 2 * head_in * head_out
    return flops


def lstm_gemm_shapes(meta: ModelMetadata, batch: int, length: int) -> list[GemmShape]:
    """The matrix products of a whole-sequence forward as onnxruntime's LSTM runs them.

    Per layer and direction: the input projection of all positions at once
    ``(B·T, in) @ (in, 4H)``, then ``T`` recurrent products ``(B, H) @ (H, 4H)``; for a
    language model, the output projection ``(B·T, H) @ (H, V)``.
    """
    shapes: list[GemmShape] = []
    for index, (inp, hidden, directions) in enumerate(_layers(meta)):
        shapes.append(GemmShape(f"layer {index} input", batch * length, inp, 4 * hidden, directions))
        shapes.append(GemmShape(f"layer {index} recurrent", batch, hidden, 4 * hidden, directions * length))
    if meta.kind == "language_model":
        head_in, head_out = _head(meta)
        shapes.append(GemmShape("output projection", batch * length, head_in, head_out))
    return shapes


def _best_and_median(fn: Callable[[], object], min_time: float) -> tuple[float, float]:
    """Fastest and median seconds per call of ``fn``, sampled for at least ``min_time`` seconds."""
    inner = calibrate(fn, min_time / 20)
    times: list[float] = []
    deadline = time.perf_counter() + min_time
    while len(times) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return min(times), statistics.median(times)


def _rates(work: float, seconds: tuple[float, float]) -> dict[str, float]:
    """``{"best", "median"}`` of ``work / seconds`` in billions per second."""
    return {"best": work / seconds[0] / 1e9, "median": work / seconds[1] / 1e9}


def gemm_gflops(m: int, k: int, n: int, *, min_time: float = 0.2) -> dict[str, float]:
    """numpy float32 ``(m, k) @ (k, n)``: ``{"best", "median"}`` GFLOP/s (numpy's BLAS, its own threads)."""
    rng = np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32)
    b = rng.random((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    return _rates(2 * m * k * n, _best_and_median(lambda: np.matmul(a, b, out=out), min_time))


# A one-node ONNX model written by hand (protobuf wire format), so that onnxruntime's own
# kernels can be measured without the onnx package: field numbers are onnx.proto's.
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: int | str | bytes) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _float_tensor_type(dims: Sequence[int]) -> bytes:
    shape = b"".join(_field(1, _field(1, d)) for d in dims)  # TensorShapeProto.dim { dim_value }
    return _field(1, _field(1, 1) + _field(2, shape))  # TypeProto.tensor_type { elem_type FLOAT, shape }


def matmul_model(m: int, weights: np.ndarray) -> bytes:
    """Serialized ONNX model (opset 17): ``y (m, n) = MatMul(a (m, k), b)`` with ``weights`` ``(k, n)`` as ``b``."""
    k, n = weights.shape
    node = _field(1, "a") + _field(1, "b") + _field(2, "y") + _field(4, "MatMul")
    init = _field(1, k) + _field(1, n) + _field(2, 1) + _field(8, "b")
    init += _field(9, np.ascontiguousarray(weights, dtype="<f4").tobytes())
    graph = _field(1, node) + _field(2, "matmul") + _field(5, init)
    graph += _field(11, _field(1, "a") + _field(2, _float_tensor_type((m, k))))
    graph += _field(12, _field(1, "y") + _field(2, _float_tensor_type((m, n))))
    return _field(1, 8) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 17))


def _ort_matmul(m: int, weights: np.ndarray, threads: int | None) -> Callable[[], object]:
    session = bare_session_from_bytes(matmul_model(m, weights), threads)
    feeds = {"a": np.random.default_rng(1).random((m, weights.shape[0]), dtype=np.float32)}
    return lambda: session.run(None, feeds)


def bare_session_from_bytes(model: bytes, threads: int | None) -> ort.InferenceSession:
    """A CPU session of a serialized model with ``threads`` intra-op threads (``None``: onnxruntime's default)."""
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def ort_gemm_gflops(m: int, k: int, n: int, *, threads: int | None = None, min_time: float = 0.2) -> dict[str, float]:
    """onnxruntime float32 ``MatMul`` ``(m, k) @ (k, n)`` with ``(k, n)`` a weight, as the models run it: GFLOP/s."""
    weights = np.random.default_rng(0).random((k, n), dtype=np.float32)
    return _rates(2 * m * k * n, _best_and_median(_ort_matmul(m, weights, threads), min_time))


def read_bandwidth(nbytes: int, *, threads: int | None = None, min_time: float = 0.2) -> dict[str, Any]:
    """Read bandwidth over a working set of ``nbytes``: ``{"best", "median"}`` GB/s, ``"bytes"``, ``"kernel"``.

    Kernels that read every byte once and do little else: numpy's float32 dot product of the
    two halves of the buffer, numpy's matrix-vector product, and onnxruntime's ``MatMul``
    of one row by a weight matrix of ``nbytes`` (a streaming step's shape, with ``threads``
    intra-op threads; up to ``ORT_GEMV_MAX_BYTES``). ``"best"`` is the fastest sample of any
    kernel, ``"median"`` and ``"kernel"`` those of the kernel with the best median
    (``"kernels"`` holds each kernel's figures);
    a working set that fits the last-level cache measures cache bandwidth, a larger one
    main memory.
    """
    count = max(nbytes // 4 // 1024 * 1024, 1024)
    buf = np.random.default_rng(0).random(count, dtype=np.float32)
    half = count // 2
    x, y = buf[:half], buf[half : 2 * half]
    mat = buf.reshape(-1, 1024)  # (count / 1024, 1024)
    vec = np.ones(1024, np.float32)
    out = np.empty(mat.shape[0], np.float32)
    size = buf.nbytes
    kernels = {
        "numpy dot": _rates(size, _best_and_median(lambda: np.dot(x, y), min_time / 3)),
        "numpy gemv": _rates(size, _best_and_median(lambda: np.dot(mat, vec, out=out), min_time / 3)),
    }
    if size <= ORT_GEMV_MAX_BYTES:
        gemv = _ort_matmul(1, buf.reshape(1024, -1), threads)
        kernels["onnxruntime gemv"] = _rates(size, _best_and_median(gemv, min_time / 3))
    kernel = max(kernels, key=lambda name: kernels[name]["median"])
    best = max(k["best"] for k in kernels.values())
    return {"best": best, "median": kernels[kernel]["median"], "bytes": size, "kernel": kernel, "kernels": kernels}


def copy_bandwidth(nbytes: int, *, min_time: float = 0.2) -> dict[str, float]:
    """``np.copyto`` of ``nbytes``: GB/s counting the bytes read plus the bytes written."""
    src = np.ones(max(nbytes // 4, 1024), np.float32)
    dst = np.empty_like(src)
    return _rates(2 * src.nbytes, _best_and_median(lambda: np.copyto(dst, src), min_time))


def measure_limits(
    weight_bytes: int | None = None,
    shapes: Sequence[GemmShape] = (),
    *,
    threads: int | None = None,
    min_time: float = 0.2,
    large_bytes: int = LARGE_BYTES,
) -> dict[str, Any]:
    """float32 GEMM GFLOP/s (1024³ and ``shapes``), read bandwidth at ``weight_bytes`` and at ``large_bytes``.

    numpy runs with its own BLAS threads (set ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS``
    before numpy is imported to change them; :func:`measure_limits_in_subprocess` does),
    onnxruntime with ``threads`` intra-op threads. ``large_bytes`` should exceed the
    last-level cache, to measure main memory. ``gemm_peak_gflops`` is the best of the
    two libraries at 1024³. ``step_bound_s`` is ``weight_bytes`` over the best read
    bandwidth measured at that size: no implementation of a streaming step that reads its
    weights once can be faster (``step_bound_median_bw_s`` uses the median bandwidth).
    """
    gemm = {
        "numpy": gemm_gflops(1024, 1024, 1024, min_time=min_time),
        "onnxruntime": ort_gemm_gflops(1024, 1024, 1024, threads=threads, min_time=min_time),
    }
    seen: dict[tuple[int, int, int], str] = {}
    for s in shapes:  # one measurement per distinct shape, named after every product that has it
        key = (s.m, s.k, s.n)
        seen[key] = f"{seen[key]}, {s.label}" if key in seen else s.label
    out: dict[str, Any] = {
        "threads": threads,
        "gemm_gflops_1024": gemm,
        "gemm_peak_gflops": max(g["best"] for g in gemm.values()),
        "gemm_gflops_shapes": {
            f"{label} ({m}×{k} @ {k}×{n})": {
                "m": m,
                "k": k,
                "n": n,
                "numpy": gemm_gflops(m, k, n, min_time=min_time / 2),
                "onnxruntime": ort_gemm_gflops(m, k, n, threads=threads, min_time=min_time / 2),
            }
            for (m, k, n), label in seen.items()
        },
        "read_bandwidth_gbs_large": read_bandwidth(large_bytes, threads=threads, min_time=min_time),
        "copy_bandwidth_gbs_large": copy_bandwidth(large_bytes, min_time=min_time),
        "blas_threads_env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }
    if weight_bytes is not None:
        bw = read_bandwidth(weight_bytes, threads=threads, min_time=min_time)
        out["weight_bytes_per_step"] = weight_bytes
        out["read_bandwidth_gbs_weights"] = bw
        out["step_bound_s"] = weight_bytes / (bw["best"] * 1e9)
        out["step_bound_median_bw_s"] = weight_bytes / (bw["median"] * 1e9)
    return out


_LIMITS_CHILD = r"""
import json, sys
from rnnedge.runtime.bench import GemmShape, measure_limits
args = json.loads(sys.argv[1])
shapes = [GemmShape(**s) for s in args["shapes"]]
limits = measure_limits(
    args["weight_bytes"], shapes, threads=args["threads"], min_time=args["min_time"], large_bytes=args["large_bytes"]
)
print(json.dumps(limits))
"""


def measure_limits_in_subprocess(
    weight_bytes: int | None = None,
    shapes: Sequence[GemmShape] = (),
    *,
    threads: int | None = None,
    min_time: float = 0.2,
    large_bytes: int = LARGE_BYTES,
    python: str | None = None,
) -> dict[str, Any]:
    """:func:`measure_limits` in a fresh interpreter whose BLAS uses ``threads`` threads (``None``: its default)."""
    env = dict(os.environ)
    if threads is not None:
        for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(threads)
    args = json.dumps(
        {
            "weight_bytes": weight_bytes,
            "shapes": [asdict(s) for s in shapes],
            "threads": threads,
            "min_time": min_time,
            "large_bytes": large_bytes,
        }
    )
    proc = subprocess.run(
        [python or sys.executable, "-c", _LIMITS_CHILD, args], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"machine-limits child failed with status {proc.returncode}: {tail[0]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- the whole report ----------------------------------------------------------------------------
def _results(summaries: Mapping[str, Summary], baseline: str) -> dict[str, dict[str, float]]:
    base = summaries[baseline].median
    return {
        name: {**s.as_dict(), "per_second": 1.0 / s.median, "ratio_to_baseline": s.median / base}
        for name, s in summaries.items()
    }


def run_bench(
    path: str | os.PathLike[str],
    *,
    threads: int | None = 1,
    rounds: int = 15,
    cold_runs: int = 5,
    limits: bool = True,
    target_s: float = 0.02,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Everything ``rnnedge bench`` measures, as a JSON-ready dict (times in seconds per unit).

    ``threads`` is the intra-op thread count of both the rnnedge model and the bare session
    (1, as :func:`rnnedge.runtime.load` uses by default; ``None``: onnxruntime's default). ``progress``
    is called with a line before each measurement.
    """
    from . import load

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    path = Path(path)
    model = load(path, threads=threads)
    try:
        session = bare_session(path, threads)
        meta = model.metadata
        report: dict[str, Any] = {
            "model": str(path),
            "kind": meta.kind,
            "variant": meta.variant,
            "threads": threads,
            "rounds": rounds,
            "machine": {
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "onnxruntime": ort.__version__,
                "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            },
        }
        for workload in (step_workload(model, session), throughput_workload(model, session)):
            say(f"timing {workload.name}: {', '.join(workload.contenders)}")
            target = target_s if workload.name == "step" else 2.5 * target_s
            summaries = run_workload(workload, rounds=rounds, target_s=target)
            entry: dict[str, Any] = {
                "unit": workload.unit,
                "batch": workload.batch,
                "length": workload.length,
                "baseline": workload.baseline,
                "results": _results(summaries, workload.baseline),
            }
            if workload.name == "throughput":
                flops = flops_per_position(meta)
                entry["flops_per_unit"] = flops
                for values in entry["results"].values():
                    values["gflops"] = flops / values["median_s"] / 1e9
            report[workload.name] = entry
    finally:
        model.close()
    if cold_runs > 0:
        say(f"cold start: {cold_runs} fresh interpreters each for rnnedge and bare onnxruntime")
        report["cold_start"] = {"runs": cold_runs, **cold_start(path, runs=cold_runs, threads=threads)}
    if limits:
        say("machine limits: GEMM rate and read bandwidth, in a fresh interpreter")
        weight_bytes = weights_per_step(meta)
        throughput = report["throughput"]
        shapes = lstm_gemm_shapes(meta, throughput["batch"], throughput["length"])
        lim = measure_limits_in_subprocess(weight_bytes, shapes, threads=threads)
        lim["weight_bytes_source"] = "estimated from the metadata's configuration"
        report["limits"] = lim
        for values in report["step"]["results"].values():
            values["ratio_to_bound"] = values["median_s"] / lim["step_bound_s"]
        peak = lim["gemm_peak_gflops"]
        for values in throughput["results"].values():
            values["percent_of_gemm_peak"] = 100.0 * values["gflops"] / peak
    if hasattr(os, "getloadavg"):
        report["machine"]["load_average_after"] = list(os.getloadavg())
    return report


def _table_from(results: Mapping[str, Mapping[str, float]], extra: Sequence[tuple[str, str, float]]) -> list[str]:
    """Rows of median, IQR, ratio and ``extra`` columns ``(header, key, scale)``."""
    width = max(len("contender"), *(len(n) for n in results))
    head = f"  {'contender':<{width}}  {'median':>11}  {'IQR':>9}  {'× bare':>7}"
    head += "".join(f"  {h:>12}" for h, _, _ in extra)
    lines = [head]
    for name, v in results.items():
        line = (
            f"  {name:<{width}}  {v['median_s'] * 1e6:>8.1f} µs  {v['iqr_s'] * 1e6:>6.1f} µs"
            f"  {v['ratio_to_baseline']:>7.2f}"
        )
        line += "".join(f"  {v[key] * scale:>12.1f}" if key in v else f"  {'':>12}" for _, key, scale in extra)
        lines.append(line)
    return lines


def format_report(report: Mapping[str, Any]) -> str:
    """The human-readable form of :func:`run_bench`'s result."""
    threads = report["threads"]
    lines = [
        f"{report['model']}: {report['kind']} ({report['variant']}), onnxruntime {report['machine']['onnxruntime']}, "
        f"intra-op threads {threads if threads is not None else 'default'}, {report['rounds']} interleaved rounds, "
        f"{report['machine']['cpu_count']} CPUs",
    ]
    load = [report["machine"].get(k) for k in ("load_average", "load_average_after")]
    if load[0] is not None:
        lines[0] += ", load average " + " → ".join(", ".join(f"{v:.2f}" for v in a) for a in load if a is not None)
    step = report["step"]
    lines.append(f"\nstreaming step at batch 1 ({step['length']} steps per sequence), time per step:")
    lines += _table_from(step["results"], [("× bound", "ratio_to_bound", 1.0)])
    tp = report["throughput"]
    lines.append(f"\nwhole sequences, batch {tp['batch']} × {tp['length']}, time per {tp['unit']}:")
    lines += _table_from(
        tp["results"],
        [
            (f"k{tp['unit']}s/s", "per_second", 1e-3),
            ("GFLOP/s", "gflops", 1.0),
            ("% GEMM peak", "percent_of_gemm_peak", 1),
        ],
    )
    if "cold_start" in report:
        cold = report["cold_start"]
        lines.append(f"\ncold start, median of {cold['runs']} fresh interpreters (ms; RSS in MB):")
        lines.append(
            f"  {'':<17} {'import numpy':>12} {'+ onnxruntime':>13} {'+ rnnedge':>9} {'load':>7} {'1st result':>10}"
            f" {'cold':>7} {'process':>8} {'RSS imports':>11} {'peak RSS':>9}"
        )
        for mode in ("rnnedge", BARE):
            c = cold[mode]

            def ms(key: str, c: Mapping[str, Any] = c) -> float:
                return float(c[key]["median_s"]) * 1e3

            lines.append(
                f"  {mode:<17} {ms('import_numpy_s'):>12.1f} {ms('import_onnxruntime_s'):>13.1f}"
                f" {ms('import_rnnedge_s'):>9.1f} {ms('load_s'):>7.1f} {ms('first_result_s'):>10.1f}"
                f" {ms('cold_s'):>7.1f} {ms('process_s'):>8.1f}"
                f" {c['max_rss_after_imports_bytes']['median_bytes'] / 1e6:>11.1f}"
                f" {c['max_rss_bytes']['median_bytes'] / 1e6:>9.1f}"
            )
        lines.append("  cold = import rnnedge.runtime + load + first result (the onnxruntime import excluded)")
    if "limits" in report:
        lim = report["limits"]
        lines.append("\nmachine limits (float32; best / median of the samples):")
        for label, g in {"1024³": lim["gemm_gflops_1024"], **lim["gemm_gflops_shapes"]}.items():
            lines.append(
                f"  GEMM {label}: numpy {g['numpy']['best']:.1f} / {g['numpy']['median']:.1f},"
                f" onnxruntime {g['onnxruntime']['best']:.1f} / {g['onnxruntime']['median']:.1f} GFLOP/s"
            )
        bw, big = lim["read_bandwidth_gbs_weights"], lim["read_bandwidth_gbs_large"]
        lines.append(
            f"  read bandwidth over {bw['bytes'] / 1e6:.2f} MB: {bw['best']:.1f} / {bw['median']:.1f} GB/s"
            f" ({bw['kernel']}); over {big['bytes'] / 1e6:.0f} MB: {big['best']:.1f} / {big['median']:.1f} GB/s"
            f" ({big['kernel']}); copy (read + write): {lim['copy_bandwidth_gbs_large']['best']:.1f} GB/s"
        )
        lines.append(
            f"  weights read per step: {lim['weight_bytes_per_step'] / 1e6:.3f} MB ({lim['weight_bytes_source']});"
            f" lower bound per step {lim['step_bound_s'] * 1e6:.1f} µs at the best bandwidth"
            f" ({lim['step_bound_median_bw_s'] * 1e6:.1f} µs at the median)"
        )
        lines.append(
            f"  GEMM peak for the percentages: {lim['gemm_peak_gflops']:.1f} GFLOP/s;"
            f" numpy's BLAS threads: {lim['blas_threads_env']}"
        )
    return "\n".join(lines)
