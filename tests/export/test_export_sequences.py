"""Export of sequence classifiers trained on a user's files: version-2 files, GRU, int8, measured quality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sequence_models import random_checkpoint, train_tiny_sequences, vowels

pytest.importorskip("onnx", reason="export needs the train extra")
torch = pytest.importorskip("torch", reason="export needs the train extra")

import numpy as np  # noqa: E402
import onnx  # noqa: E402

from rnnedge.cli.main import cli  # noqa: E402
from rnnedge.errors import CheckpointError  # noqa: E402
from rnnedge.export.exporter import export_checkpoint  # noqa: E402
from rnnedge.runtime import load_classifier, read_metadata  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LSTM trained on JapaneseVowels, in its run folder."""
    run = tmp_path_factory.mktemp("vowels") / "run"
    train_tiny_sequences(run, epochs=3)
    return run


def test_train_export_int8_info_and_classify_end_to_end(trained: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "vowels.onnx"
    result = runner.invoke(cli, ["export", str(trained / "checkpoint.pt"), "-o", str(out), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert "causal_classifier" in result.output and "quality: float_test_accuracy" in result.output
    meta, int8 = read_metadata(out), read_metadata(out.with_suffix(".int8.onnx"))
    assert meta.format_version == 1 and int8.format_version == 1 and int8.variant == "int8"
    assert meta.config["data"]["test"] == str(vowels("test").resolve())
    ops = {n.op_type for n in onnx.load(str(out.with_suffix(".int8.onnx"))).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    # The recorded int8 accuracy is what `classify --test` prints for the file, through the runtime.
    for path, key in ((out, "float_test_accuracy"), (out.with_suffix(".int8.onnx"), "test_accuracy")):
        shown = runner.invoke(cli, ["classify", str(path), "--test", str(vowels("test"))])
        assert shown.exit_code == 0, shown.output
        assert f"test accuracy {int8.quality[key]:.4f}" in shown.output and "370 sequences" in shown.output
    info = runner.invoke(cli, ["info", str(out), "--json"])
    described = json.loads(info.output)
    assert described["format_version"] == 1 and described["lengths"]["dtype"] == "int64"
    assert len(described["standardize"]["mean"]) == 12 and described["labels"][0] == "1"


def test_batch_export_of_a_run_folder(trained: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    result = CliRunner().invoke(cli, ["export", str(trained), "-o", str(dist) + "/"])
    assert result.exit_code == 0, result.output
    models = json.loads((dist / "manifest.json").read_text())["models"]
    assert [(m["variant"], m["status"], m["kind"]) for m in models] == [("float32", "ok", "causal_classifier")]
    assert read_metadata(dist / Path(models[0]["file"]).name).format_version == 1


def test_gru_exports_with_native_gru_nodes_and_gets_no_int8(tmp_path: Path) -> None:
    ckpt = random_checkpoint(tmp_path / "gru.pt", cell="gru", num_layers=2, bidirectional=True, head="last")
    out = tmp_path / "gru.onnx"
    result = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(out), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert "skipped int8" in result.output and "onnxruntime has no int8 GRU kernel" in result.output
    assert not out.with_suffix(".int8.onnx").exists()
    nodes = [n for n in onnx.load(str(out)).graph.node if n.op_type == "GRU"]
    assert len(nodes) == 2
    assert all({a.name: a for a in n.attribute}["linear_before_reset"].i == 1 for n in nodes)
    assert [s.name for s in load_classifier(out).metadata.states] == ["prefix"]
    info = CliRunner().invoke(cli, ["info", str(out)])
    assert "cell=gru" in info.output and "num_layers=2" in info.output and "format_version: 1" in info.output


def test_a_checkpoint_without_its_normalisation_is_refused(tmp_path: Path) -> None:
    ckpt_path = random_checkpoint(tmp_path / "c.pt")
    ckpt = torch.load(ckpt_path, weights_only=True)
    for change, message in (
        (lambda c: c.pop("standardize"), "must carry its per-channel normalisation"),
        (lambda c: c["standardize"].update(std=[1.0, 0.0, 1.0]), "expected every std > 0"),
        (lambda c: c["standardize"].update(mean=[0.0]), "expected 3 finite numbers, one per channel"),
        (lambda c: c.update(labels=["a"]), "expected 4 strings"),
    ):
        broken = {**ckpt, "standardize": dict(ckpt["standardize"])}
        change(broken)
        torch.save(broken, tmp_path / "broken.pt")
        with pytest.raises(CheckpointError, match=message):
            export_checkpoint(tmp_path / "broken.pt", tmp_path / "broken.onnx")
        assert not (tmp_path / "broken.onnx").exists()


def test_classify_without_its_test_file_says_to_pass_it(tmp_path: Path) -> None:
    from rnnedge.export.exporter import export_model

    model = tmp_path / "seq.onnx"
    export_model(random_checkpoint(tmp_path / "seq.pt", channels=3), model)
    result = CliRunner().invoke(cli, ["classify", str(model)])
    assert result.exit_code == 2, result.output  # before: "each row must have 3 values, got ... (500, 28, 28)"
    assert "records no test file" in result.output and "--test FILE" in result.output


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("head", ["mean", "last"])
def test_every_one_layer_bidirectional_model_exports_and_streams_its_prefix(
    tmp_path: Path, cell: str, head: str
) -> None:
    """The forward direction carried beside the prefix, for either head and cell: parity, then a stream."""
    ckpt = random_checkpoint(tmp_path / "bi.pt", cell=cell, bidirectional=True, head=head)
    out = export_checkpoint(ckpt, tmp_path / "bi.onnx").path  # validated against PyTorch, chunkings included
    parts = ["h", "c"] if cell == "lstm" else ["h"]
    with load_classifier(out) as model:
        assert [s.name for s in model.metadata.states] == [*parts, *(["h_sum", "steps"] * (head == "mean")), "prefix"]
        rows = np.random.default_rng(0).standard_normal((9, 3)).astype(np.float32)
        stream = model.stream()
        for t in range(1, 10):
            np.testing.assert_allclose(stream.feed(rows[t - 1]), model.predict(rows[None, :t])[0], atol=1e-5)


def test_variants_of_a_run_whose_test_file_moved_are_measured_on_the_file_given(tmp_path: Path) -> None:
    from rnnedge.training.checkpoint import load_checkpoint, save_checkpoint

    ckpt_path = train_tiny_sequences(tmp_path / "run", epochs=1)
    ckpt = load_checkpoint(ckpt_path)
    save_checkpoint(ckpt_path, {**ckpt, "data": {**ckpt["data"], "test": "/gone/uea/JapaneseVowels/x_TEST.ts"}})
    out = tmp_path / "jv.onnx"
    args = ["export", str(ckpt_path), "-o", str(out), "--quantize", "int8", "--data", str(vowels("test"))]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert read_metadata(out.with_suffix(".int8.onnx")).quality["test_accuracy"] > 0


def test_a_convolutional_branch_exports_with_its_batch_norm_folded_and_an_int8_variant(tmp_path: Path) -> None:
    """Trained (so the batch norms hold real statistics) on ragged sequences: parity with PyTorch, the prefix
    re-read by a stream, each sequence's result the same padded in a batch as alone, then its int8 variant."""
    ckpt = train_tiny_sequences(tmp_path / "run", epochs=2, conv_channels=6)
    out = tmp_path / "conv.onnx"
    result = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(out), "--quantize", "int8"])
    assert result.exit_code == 0, result.output  # validated against PyTorch before it was written
    assert "noncausal_classifier" in result.output
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("Conv") == 3 and "BatchNormalization" not in ops  # folded into the convolutions
    with load_classifier(out) as model:
        assert not model.causal and [s.name for s in model.metadata.states] == ["prefix"]
        assert model.metadata.config["model"]["conv_channels"] == 6
        rng = np.random.default_rng(0)
        rows = [rng.standard_normal((n, 12)).astype(np.float32) for n in (3, 17, 9)]
        alone = np.stack([model.predict(r[None])[0] for r in rows])
        np.testing.assert_allclose(model.predict(rows), alone, atol=1e-5)  # padding changes nothing
        stream = model.stream()
        for t in range(1, 18):
            np.testing.assert_allclose(stream.feed(rows[1][t - 1]), model.predict(rows[1][None, :t])[0], atol=1e-5)
    int8 = out.with_suffix(".int8.onnx")
    assert "ConvInteger" in {n.op_type for n in onnx.load(str(int8)).graph.node}
    quality = read_metadata(int8).quality
    assert quality["test_accuracy"] >= quality["float_test_accuracy"] - 0.05, quality
