"""Export of the MNIST row classifier (the ``mnist-lstm`` preset of the sequence classifier).

Graph shape, metadata, determinism, parity, and refusal of a wrong graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from rnnedge.errors import CheckpointError, ExportValidationError
from rnnedge.export.exporter import build_export, export_checkpoint, write_validated
from rnnedge.export.graphs import OPSET
from rnnedge.runtime import load
from rnnedge.runtime.metadata import METADATA_KEY, ModelMetadata
from rnnedge.training.checkpoint import load_checkpoint


def _built(checkpoint: Path):
    built = build_export(load_checkpoint(checkpoint))
    return built.graph, built.metadata, built.reference


def test_graph_is_native_lstm_with_symbolic_shapes(tiny_onnx: Path) -> None:
    model = onnx.load(str(tiny_onnx))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("LSTM") == 1 and not {"Loop", "Scan", "If"} & set(ops)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    shapes = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.input, *model.graph.output]
    }
    assert shapes["x"] == ["batch", "sequence", 28] and shapes["lengths"] == ["batch"]
    assert shapes["logits"] == ["batch", 10] and shapes["probs"] == ["batch", 10]
    assert shapes["h"] == shapes["h_out"] == [1, "batch", 24]
    assert shapes["h_sum"] == shapes["h_sum_out"] == ["batch", 24]
    assert shapes["steps"] == shapes["steps_out"] == ["batch", 1]


def test_metadata_describes_the_model(tiny_onnx: Path, tiny_checkpoint: Path) -> None:
    props = {p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props}
    meta = ModelMetadata.from_json(props[METADATA_KEY])
    ckpt = load_checkpoint(tiny_checkpoint)
    assert meta.kind == "causal_classifier" and meta.causal
    assert meta.labels == tuple("0123456789") and meta.format_version == 1
    assert meta.standardize is not None
    # normalize="global": every pixel column gets the mean and std of all training pixels (MNIST's 0.1307 and
    # 0.3081 of 255, within the training split's sampling)
    assert len(set(meta.standardize.mean)) == 1 and len(set(meta.standardize.std)) == 1
    assert meta.standardize.mean[0] / 255 == pytest.approx(0.1307, abs=2e-3)
    assert meta.standardize.std[0] / 255 == pytest.approx(0.3081, abs=2e-3)
    assert meta.config["model"] == ckpt["config"] and meta.config["data"]["test"].endswith("t10k-images-idx3-ubyte.gz")
    assert meta.quality["test_accuracy"] == pytest.approx(ckpt["metrics"]["test_accuracy"])
    assert [s.name for s in meta.states] == ["h", "c", "h_sum", "steps"]
    assert meta.producer["opset"] == str(OPSET) and meta.producer["torch"].startswith("2.")


def test_export_is_deterministic(tiny_checkpoint: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    again = export_checkpoint(tiny_checkpoint, tmp_path / "again.onnx").path
    assert again.read_bytes() == tiny_onnx.read_bytes()


def test_onnxruntime_logs_no_warnings(tiny_onnx: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = load(tiny_onnx)
    state = model.init_state(3)
    for length in (1, 5, 28, 61):
        _, state = model.step(np.zeros((3, length, 28), np.float32), state)
    model.close()
    captured = capfd.readouterr()
    assert "Warning" not in captured.err and "W:onnxruntime" not in captured.err, captured.err


def test_a_wrong_graph_is_refused_and_nothing_written(tiny_checkpoint: Path, tmp_path: Path) -> None:
    graph, meta, reference = _built(tiny_checkpoint)
    head = next(t for t in graph.graph.initializer if t.name == "head.bias")
    bias = onnx.numpy_helper.to_array(head).copy()
    bias[3] += 0.5  # a subtle corruption: one class's bias
    head.CopyFrom(onnx.numpy_helper.from_array(bias, "head.bias"))
    target = tmp_path / "model.onnx"
    target.write_bytes(b"earlier good file")
    with pytest.raises(ExportValidationError) as err:
        write_validated(graph, meta, reference, target)
    assert any("logits differs from the exact result by up to 0.5" in m for m in err.value.mismatches)
    assert any("streamed probs" in m for m in err.value.mismatches)
    assert target.read_bytes() == b"earlier good file"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_unknown_checkpoint_kind_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from rnnedge.training.checkpoint import save_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tmp_path / "odd.pt", {**ckpt, "kind": "something-else"})
    with pytest.raises(CheckpointError, match="cannot export a checkpoint of kind 'something-else'"):
        export_checkpoint(tmp_path / "odd.pt", tmp_path / "odd.onnx")
    assert not (tmp_path / "odd.onnx").exists()


def test_export_imports_neither_trainer() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import rnnedge.export.exporter, rnnedge.export.batch; "
        "print([m for m in sys.modules if m.endswith(('train_sequences', 'train_lm'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
