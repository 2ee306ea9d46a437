"""Cold start: fresh interpreters timing import, load and the first result, and their peak resident memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from .timing import summarize
from .workloads import BARE

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
