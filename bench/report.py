"""The whole report of ``rnnedge bench MODEL``: every measurement for one model, and its text form."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from rnnedge.errors import ModelFileError
from rnnedge.runtime import load

from .cold import cold_start
from .cost import flops_per_position, lstm_gemm_shapes, weights_per_step
from .limits import measure_limits_in_subprocess
from .timing import BARE, Summary
from .workloads import bare_session, run_workload, step_workload, throughput_workload

__all__ = ["format_report", "run_bench"]


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
    provider: str = "cpu",
    rounds: int = 15,
    cold_runs: int = 5,
    limits: bool = True,
    target_s: float = 0.02,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Everything ``rnnedge bench`` measures, as a JSON-ready dict (times in seconds per unit).

    ``threads`` is the intra-op thread count of both the rnnedge model and the bare session
    (1, as :func:`rnnedge.runtime.load` uses by default; ``None``: onnxruntime's default).
    ``provider`` is :func:`~rnnedge.runtime.load`'s (``"cpu"``, ``"cuda"``, ``"auto"``); the bare
    session and the cold starts run on the provider the model was loaded on. The machine limits
    are the CPU's: on CUDA they are skipped (``"limits_skipped"`` says why). ``progress`` is
    called with a line before each measurement. A model whose configuration lacks a field the
    cost estimates need is refused with :class:`ModelFileError` before anything is timed.
    """

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    path = Path(path)
    model = load(path, provider=provider, threads=threads)
    try:
        meta = model.metadata
        resolved = model.provider
        try:
            flops = flops_per_position(meta)
            weight_bytes = weights_per_step(meta)
        except ModelFileError as e:
            raise ModelFileError(f"{path}: {e}") from None
        session = bare_session(path, threads, resolved)
        report: dict[str, Any] = {
            "model": str(path),
            "kind": meta.kind,
            "variant": meta.variant,
            "provider": resolved,
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
                entry["flops_per_unit"] = flops
                for values in entry["results"].values():
                    values["gflops"] = flops / values["median_s"] / 1e9
            report[workload.name] = entry
    finally:
        model.close()
    if cold_runs > 0:
        say(f"cold start: {cold_runs} fresh interpreters each for rnnedge and bare onnxruntime")
        cold = cold_start(path, runs=cold_runs, threads=threads, provider=resolved)
        report["cold_start"] = {"runs": cold_runs, **cold}
    if limits and resolved != "cpu":
        report["limits_skipped"] = (
            f"the machine limits are the CPU's GEMM rate and bandwidth; the model ran on {resolved}"
        )
    elif limits:
        say("machine limits: GEMM rate and read bandwidth, in a fresh interpreter")
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
        f"{report['model']}: {report['kind']} ({report['variant']}), onnxruntime {report['machine']['onnxruntime']}"
        f" on {report['provider']}, "
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
    if "limits_skipped" in report:
        lines.append(f"\nmachine limits skipped: {report['limits_skipped']}")
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
