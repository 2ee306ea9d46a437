"""Session options against step latency: intra-op threads and graph optimisation level, to choose the defaults.

    python benchmarks/threads.py MODEL.onnx [MODEL.onnx ...] [--rounds 10] [--throughput] [--json [PATH]]

For each model, the sessions ``rnnedge.runtime.load`` builds with ``threads`` in
{1, 2, default} (optimisation "all") and, at one thread, every optimisation level
("all", "extended", "basic", "disabled"); plus, at 2 threads, a session built by hand
with the same settings and onnxruntime's spin-waiting of idle pool threads turned off
(``session.intra_op.allow_spinning = 0``, which rnnedge does not expose). All are timed
interleaved, per step at batch 1 (a hand-written loop on each session's ``run``, so only
the session differs; 20 ms of untimed sleep after every sample lets a multi-threaded
session's idle pool threads stop spinning before the next one runs). ``--throughput`` adds
the whole-sequence workload (20 × 35 tokens, 256 × 28 rows) at 1 and 2 threads. Each
optimisation level's optimised graph is saved (``optimized_model_path``) and its operators
are listed.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import onnx
import onnxruntime as ort
from results import Results, add_json_option

from rnnedge.bench import BARE, format_table, run_workload, step_workload, throughput_workload
from rnnedge.runtime import Model, load

LEVELS = ("all", "extended", "basic", "disabled")
ort.set_default_logger_severity(3)  # saving an "all"-level graph warns that it may be hardware-specific
PAUSE_S = 0.02  # untimed, after each sample: the previous session's idle pool threads stop spinning


def no_spin_session(path: Path, threads: int) -> ort.InferenceSession:
    """rnnedge's session settings (see ``runtime/session.py``) with idle pool threads that sleep instead of spin."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path.read_bytes(), so, providers=["CPUExecutionProvider"])


def configurations(path: Path) -> dict[str, tuple[Model, ort.InferenceSession]]:
    """Label -> (an rnnedge model, the session to time), one per configuration."""
    configs: dict[str, tuple[Model, ort.InferenceSession]] = {}
    for threads in (1, 2, None):
        model = load(path, threads=threads)
        configs[f"threads={threads or 'default'} opt=all"] = (model, model.session)
    for level in LEVELS[1:]:
        model = load(path, threads=1, optimization=level)
        configs[f"threads=1 opt={level}"] = (model, model.session)
    configs["threads=2 opt=all no-spin"] = (configs["threads=1 opt=all"][0], no_spin_session(path, 2))
    return configs


def optimised_graphs(path: Path) -> None:
    """Save the graph each optimisation level produces and print its operators."""
    with tempfile.TemporaryDirectory() as tmp:
        for level in LEVELS:
            out = Path(tmp) / f"{level}.onnx"
            load(path, threads=1, optimization=level, optimized_model_path=str(out)).close()
            ops = Counter(node.op_type for node in onnx.load(str(out), load_external_data=False).graph.node)
            print(
                f"  opt={level:<9} {sum(ops.values()):>3} nodes: "
                + ", ".join(f"{k}×{v}" for k, v in sorted(ops.items()))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--throughput", action="store_true", help="also whole sequences at 1 and 2 threads")
    add_json_option(parser)
    args = parser.parse_args()
    results = Results("threads", __doc__, models=args.models)
    for path in args.models:
        configs = configurations(path)
        contenders: dict[str, Callable[[], object]] = {}
        per_call = 1
        for label, (model, session) in configs.items():
            workload = step_workload(model, session)
            contenders[label] = workload.contenders[BARE]
            per_call = workload.per_call
        workload.contenders = contenders
        summaries = run_workload(workload, rounds=args.rounds, pause_s=PAUSE_S)
        print(f"\n{path.name}: step at batch 1 ({per_call} steps per sequence), {args.rounds} interleaved rounds")
        print(format_table(summaries, "threads=1 opt=all"))
        results.summaries(f"{path.name}: step at batch 1, {args.rounds} rounds", summaries, "threads=1 opt=all")
        if args.throughput:
            tp_contenders: dict[str, Callable[[], object]] = {}
            for label in ("threads=1 opt=all", "threads=2 opt=all", "threads=2 opt=all no-spin"):
                model, session = configs[label]
                tp = throughput_workload(model, session)
                tp_contenders[label] = tp.contenders[BARE]
            tp.contenders = tp_contenders
            tps = run_workload(tp, rounds=args.rounds, target_s=0.1, pause_s=PAUSE_S)
            print(f"{path.name}: whole sequences, batch {tp.batch} × {tp.length}, time per {tp.unit}")
            print(format_table(tps, "threads=1 opt=all"))
            results.summaries(
                f"{path.name}: whole sequences, batch {tp.batch} × {tp.length}, per {tp.unit}", tps, "threads=1 opt=all"
            )
        print(f"{path.name}: graph after each optimisation level")
        optimised_graphs(path)
    results.write(args.json)


if __name__ == "__main__":
    main()
