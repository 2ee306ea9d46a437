"""One cold start, in the fresh interpreter that runs this module (``python -m rnnedge.bench.cold_child``).

Started by :func:`rnnedge.bench.cold_start`, never imported by the bench itself. Its clocks
start before numpy is imported: the package ``rnnedge.bench`` that ``-m`` imports first loads
neither numpy nor onnxruntime. Arguments: ``MODE PATH THREADS STEPS PROVIDER``, with ``MODE``
``rnnedge`` (the runtime: ``load``, a stream fed one row or one id) or ``bare`` (a hand-written
onnxruntime program that knows the file format from its documented metadata), ``THREADS`` an
integer or ``default``, ``PROVIDER`` ``cpu`` or ``cuda``. Prints one JSON line of seconds and bytes.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from .providers import ort_providers


def max_rss() -> int:
    """Peak resident memory of this process image, in bytes.

    Linux: ``VmHWM``, this image's own peak. ``ru_maxrss`` would also count the parent's peak
    at fork time (the kernel carries it across fork and exec), so a large parent would show.
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if sys.platform == "darwin" else rss * 1024


def main(argv: list[str]) -> dict[str, Any]:
    """The phases of one cold start of ``argv``'s program, in seconds, and its peak memory."""
    mode, path, threads_arg, steps_arg, provider = argv
    threads = None if threads_arg == "default" else int(threads_arg)
    steps = int(steps_arg)
    t0 = time.perf_counter()
    import numpy as np

    t1 = time.perf_counter()
    import onnxruntime as ort

    t2 = time.perf_counter()
    rss_imports = max_rss()
    if mode == "rnnedge":
        t3 = time.perf_counter()
        from rnnedge.runtime import load

        t4 = time.perf_counter()
        model = load(path, provider=provider, threads=threads)
        t5 = time.perf_counter()
        x = model.example_steps(np.random.default_rng(0), 1)[0]  # one step of what a caller feeds
        stream = model.stream()
        stream.feed(x)
        t6 = time.perf_counter()
        for _ in range(steps):
            stream.feed(x)
    elif mode == "bare":
        t3 = t4 = time.perf_counter()
        so = ort.SessionOptions()
        if threads is not None:
            so.intra_op_num_threads = threads
        session = ort.InferenceSession(path, so, providers=ort_providers(provider))
        t5 = time.perf_counter()
        metadata = json.loads(session.get_modelmeta().custom_metadata_map["rnnedge"])
        types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}
        feeds = {}
        for i in session.get_inputs():
            shape = [d if isinstance(d, int) else (1 if d in ("batch", "sequence") else 0) for d in i.shape]
            feeds[i.name] = np.zeros(shape, types[i.type])
        outputs = [o.name for o in session.get_outputs()]
        states = [(s["input"]["name"], s["output"]) for s in metadata["states"]]
        out = dict(zip(outputs, session.run(outputs, feeds), strict=True))
        t6 = time.perf_counter()
        for _ in range(steps):
            feeds.update({name: out[output] for name, output in states})
            out = dict(zip(outputs, session.run(outputs, feeds), strict=True))
    else:
        raise SystemExit(f"mode must be 'rnnedge' or 'bare', got {mode!r}")
    t7 = time.perf_counter()
    return {
        "import_numpy_s": t1 - t0,
        "import_onnxruntime_s": t2 - t1,
        "import_rnnedge_s": t4 - t3,
        "load_s": t5 - t4,
        "first_result_s": t6 - t5,
        "stream_steps_s": t7 - t6,
        "max_rss_after_imports_bytes": rss_imports,
        "max_rss_bytes": max_rss(),
    }


if __name__ == "__main__":
    preloaded = "numpy" in sys.modules or "onnxruntime" in sys.modules
    result = main(sys.argv[1:])
    print(json.dumps({**result, "numpy_preloaded": preloaded}))
