"""Batch export of many runs: manifest, report, int8 variants, failures reported, unchanged runs skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from rnnedge.errors import ExportValidationError
from rnnedge.export.batch import export_many
from rnnedge.export.quantize import quantize_int8
from rnnedge.runtime import load


@pytest.fixture()
def runs(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    (root / "good").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, root / "good" / "checkpoint.pt")
    (root / "broken").mkdir()
    (root / "broken" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    return root


def test_batch_export_with_int8(runs: Path, tmp_path: Path, data_dir: Path) -> None:
    dist = tmp_path / "dist"
    summary = export_many([runs], dist, variants=["int8"], data=data_dir)
    status = {(e["name"], e["variant"]): e["status"] for e in summary.entries}
    assert status == {
        ("broken", "float32"): "failed",
        ("broken", "int8"): "failed",
        ("good", "float32"): "ok",
        ("good", "int8"): "ok",
    }
    manifest = json.loads((dist / "manifest.json").read_text())
    good = next(e for e in manifest["models"] if e["name"] == "good" and e["variant"] == "float32")
    assert good["kind"] == "causal_classifier" and good["opset"] == 17 and len(good["sha256"]) == 64
    assert [i["name"] for i in good["inputs"]] == ["x", "h", "c", "h_sum", "steps"]
    assert good["parity"]["checks"] > 100 and good["parity"]["worst"] < 1e-3
    broken = next(e for e in manifest["models"] if e["name"] == "broken" and e["variant"] == "float32")
    assert "CheckpointError" in broken["error"]
    report = (dist / "report.md").read_text()
    assert "| good | int8 | ok |" in report and "broken (float32) failed" in report

    int8 = next(e for e in manifest["models"] if e["variant"] == "int8" and e["status"] == "ok")
    assert int8["size_bytes"] < good["size_bytes"] / 2  # a tiny model: the metadata is a large share
    assert abs(int8["quality"]["test_accuracy_change"]) < 0.05
    ops = {n.op_type for n in onnx.load(str(dist / "good.int8.onnx")).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    assert load(dist / "good.int8.onnx").metadata.variant == "int8"

    again = export_many([runs], dist, variants=["int8"], data=data_dir)
    assert {(e["name"], e["variant"]): e["status"] for e in again.entries}[("good", "float32")] == "unchanged"
    (dist / "good.onnx").write_bytes(b"damaged")
    third = export_many([runs], dist, data=data_dir)
    assert {(e["name"], e["variant"]): e["status"] for e in third.entries}[("good", "float32")] == "ok"


def test_quantization_that_leaves_float_lstm_is_refused(tiny_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    from rnnedge.export import quantize as module

    def leave_float(src, dst, **kwargs):  # what quantize_dynamic does to graphs it cannot handle
        shutil.copy(src, dst)

    monkeypatch.setattr(module, "quantize_dynamic", leave_float)
    with pytest.raises(ExportValidationError, match="left the LSTM in float32"):
        quantize_int8(tiny_onnx, tmp_path / "q.onnx")
    assert list(tmp_path.iterdir()) == []


def test_fp16_is_skipped_for_classifiers_and_made_for_language_models(
    tiny_checkpoint: Path, tiny_lm_checkpoint: Path, tmp_path: Path, ptb_data: Path
) -> None:
    runs = tmp_path / "runs"
    for name, checkpoint in (("digits", tiny_checkpoint), ("words", tiny_lm_checkpoint)):
        (runs / name).mkdir(parents=True)
        shutil.copy(checkpoint, runs / name / "checkpoint.pt")
    dist = tmp_path / "dist"
    summary = export_many([runs], dist, variants=["fp16"], data=ptb_data)
    status = {(e["name"], e["variant"]): e["status"] for e in summary.entries}
    assert not summary.failed, summary.failed
    assert status == {
        ("digits", "float32"): "ok",
        ("digits", "fp16"): "skipped",
        ("words", "float32"): "ok",
        ("words", "fp16"): "ok",
    }
    assert not summary.failed and (dist / "words.fp16.onnx").is_file() and not (dist / "digits.fp16.onnx").exists()
    assert "row count and running sum need float32" in (dist / "report.md").read_text()
