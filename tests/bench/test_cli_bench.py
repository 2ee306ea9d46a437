"""``rnnedge bench`` on the tiny models: the structure of what it reports, never its timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnedge.cli.main import cli

FAST = ["--rounds", "2", "--threads", "1"]


def _bench(*args: str) -> str:
    result = CliRunner().invoke(cli, ["bench", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _check_results(results: dict[str, dict[str, float]], names: set[str]) -> None:
    assert set(results) == names
    for values in results.values():
        assert values["median_s"] > 0 and values["iqr_s"] >= 0 and values["samples"] == 2
        assert values["q1_s"] <= values["median_s"] <= values["q3_s"]
        assert values["per_second"] == pytest.approx(1 / values["median_s"])
    assert results["bare onnxruntime"]["ratio_to_baseline"] == pytest.approx(1.0)


def test_bench_json_classifier(tiny_onnx: Path) -> None:
    report = json.loads(_bench(str(tiny_onnx), *FAST, "--cold-runs", "1", "--no-limits", "--json"))
    assert report["kind"] == "causal_classifier" and report["threads"] == 1 and report["rounds"] == 2
    step, throughput = report["step"], report["throughput"]
    assert (step["unit"], step["batch"], step["length"], step["baseline"]) == ("step", 1, 28, "bare onnxruntime")
    _check_results(step["results"], {"bare onnxruntime", "rnnedge Model.step", "rnnedge Stream.feed (uint8 row)"})
    assert (throughput["unit"], throughput["batch"], throughput["length"]) == ("row", 256, 28)
    _check_results(throughput["results"], {"bare onnxruntime", "rnnedge Model.step", "rnnedge predict (uint8 images)"})
    assert throughput["flops_per_unit"] > 0
    assert all(v["gflops"] > 0 for v in throughput["results"].values())
    cold = report["cold_start"]
    assert cold["runs"] == 1
    for program in ("rnnedge", "bare onnxruntime"):
        phases = cold[program]
        for key in ("import_onnxruntime_s", "import_rnnedge_s", "load_s", "first_result_s", "cold_s", "process_s"):
            assert phases[key]["median_s"] >= 0 and phases[key]["samples"] == 1
        assert phases["max_rss_bytes"]["median_bytes"] >= phases["max_rss_after_imports_bytes"]["median_bytes"] > 0
        assert phases["process_s"]["median_s"] > phases["cold_s"]["median_s"]
    assert cold["bare onnxruntime"]["import_rnnedge_s"]["median_s"] == 0
    assert "limits" not in report


def test_bench_text_language_model(tiny_lm_onnx: Path) -> None:
    out = _bench(str(tiny_lm_onnx), *FAST, "--cold-runs", "0", "--no-limits")
    assert "language_model" in out and "intra-op threads 1" in out
    assert "streaming step at batch 1 (35 steps per sequence)" in out
    assert "whole sequences, batch 20 × 35, time per token" in out
    for name in ("bare onnxruntime", "rnnedge Model.step", "rnnedge Stream.feed (id → probs)"):
        assert name in out
    assert "cold start" not in out and "machine limits" not in out


def test_bench_limits_in_json(tiny_lm_onnx: Path) -> None:
    report = json.loads(_bench(str(tiny_lm_onnx), "--rounds", "1", "--cold-runs", "0", "--json"))
    assert report["threads"] == 1  # load()'s default
    limits = report["limits"]
    assert limits["gemm_peak_gflops"] > 0 and limits["step_bound_s"] > 0
    assert limits["weight_bytes_per_step"] > 0
    assert {"layer 0 input", "layer 0 recurrent", "output projection"} <= {
        label.split(" (")[0] for label in limits["gemm_gflops_shapes"]
    }
    for values in report["step"]["results"].values():
        assert values["ratio_to_bound"] > 0
    for values in report["throughput"]["results"].values():
        assert values["percent_of_gemm_peak"] > 0


def test_bench_refuses_bad_input(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["bench", str(tmp_path / "missing.onnx"), "--no-limits"])
    assert missing.exit_code == 1 and "ModelFileError" in missing.output
    assert CliRunner().invoke(cli, ["bench", "x.onnx", "--rounds", "0"]).exit_code == 2


def test_bench_works_without_torch(without_torch, tiny_onnx: Path) -> None:
    out = without_torch("bench", str(tiny_onnx), *FAST, "--cold-runs", "1", "--no-limits", "--json")
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)) >= {"step", "throughput", "cold_start"}
