"""The command line through click's test runner: the same functions, the user's view."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from rnnedge.cli.main import cli


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "export", "info", "classify", "demo", "plot", "generate", "perplexity", "next-word"):
        assert command in result.output


def test_runtime_commands_workwithout_torch(
    without_torch, tiny_onnx: Path, tiny_checkpoint: Path, data_dir: Path
) -> None:
    out = without_torch("--help")
    assert out.returncode == 0 and "classify" in out.stdout, out.stderr
    out = without_torch("info", str(tiny_onnx), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["kind"] == "causal_classifier", out.stderr
    out = without_torch("classify", str(tiny_onnx), "--data", str(data_dir), "--limit", "50", "--quiet")
    assert out.returncode == 0 and "test accuracy" in out.stdout, out.stderr
    out = without_torch("plot", str(tiny_checkpoint.parent))
    assert out.returncode == 0 or "matplotlib" in out.stderr, out.stderr
    out = without_torch("export", str(tiny_checkpoint), "-o", str(tiny_checkpoint.parent / "x.onnx"))
    assert out.returncode == 1 and "pip install 'rnnedge[train]'" in out.stderr, out.stderr


def test_train_export_info_classify(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(
        cli,
        [
            "train",
            "mnist-lstm",
            "--data",
            str(data_dir),
            "--out",
            str(run),
            "--max-steps",
            "40",
            "--lr",
            "0.01",
            "--hidden-size",
            "16",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["test_accuracy"] > 0.2
    assert (run / "checkpoint.pt").is_file() and (run / "metrics.jsonl").is_file() and (run / "train.log").is_file()

    model = tmp_path / "m.onnx"
    result = runner.invoke(cli, ["export", str(run / "checkpoint.pt"), "-o", str(model)])
    assert result.exit_code == 0, result.output
    assert "parity with PyTorch" in result.output

    result = runner.invoke(cli, ["info", str(model), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["kind"] == "causal_classifier" and info["labels"] == list("0123456789")
    assert [s["input"] for s in info["state"]] == ["h", "c", "h_sum", "steps"]
    result = runner.invoke(cli, ["info", str(model)])
    assert result.exit_code == 0 and "standardize: mean=" in result.output and "(every channel)" in result.output

    result = runner.invoke(cli, ["classify", str(model), "--data", str(data_dir), "--limit", "500", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "junk.onnx").write_text("junk")
    result = runner.invoke(cli, ["info", str(tmp_path / "junk.onnx")])
    assert result.exit_code == 1 and "ModelFileError" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["train", "mnist-lstm", "--out", str(tmp_path), "--epochs", "0"])
    assert result.exit_code == 2 and "--epochs" in result.output
    result = runner.invoke(cli, ["train", "mnist-lstm", "--out", str(tmp_path), "--data", str(tmp_path / "none")])
    assert result.exit_code == 1 and "DataError" in result.output and "Put the files in" in result.output


def test_batch_export_and_plot(tiny_checkpoint: Path, tmp_path: Path, data_dir: Path) -> None:
    import shutil

    runner = CliRunner()
    for name in ("one", "two"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        shutil.copy(tiny_checkpoint, tmp_path / "runs" / name / "checkpoint.pt")
    dist = tmp_path / "dist"
    result = runner.invoke(cli, ["export", str(tmp_path / "runs" / "*"), "-o", str(dist), "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in dist.iterdir()) == ["manifest.json", "one.onnx", "report.md", "two.onnx"]
    result = runner.invoke(cli, ["export", str(tmp_path / "runs"), "-o", str(dist), "--quiet"])
    assert result.exit_code == 0 and result.output.count("unchanged") == 2, result.output
    (tmp_path / "runs" / "two" / "checkpoint.pt").write_bytes(b"broken")
    result = runner.invoke(cli, ["export", str(tmp_path / "runs"), "-o", str(dist), "--quiet"])
    assert result.exit_code == 1 and "1 of 2 exports failed" in result.output, result.output

    single = tmp_path / "single.onnx"
    result = runner.invoke(
        cli, ["export", str(tiny_checkpoint), "-o", str(single), "--quantize", "int8", "--data", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "single.int8.onnx").is_file() and "test_accuracy_change" in result.output

    result = runner.invoke(cli, ["plot", str(tiny_checkpoint.parent)])
    assert result.exit_code == 0 and (tiny_checkpoint.parent / "curves.png").is_file(), result.output


def test_classify_needs_only_the_test_files(tiny_onnx: Path, data_dir: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data_dir / "mnist" / name, folder / name)
    result = CliRunner().invoke(cli, ["classify", str(tiny_onnx), "--data", str(tmp_path / "data"), "--limit", "50"])
    assert result.exit_code == 0, result.output  # before: "mnist files missing ... train-images-idx3-ubyte.gz"
    assert "test accuracy" in result.output


def test_a_checkpoint_given_as_a_model_says_to_export_it(tiny_checkpoint: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(tiny_checkpoint)])
    assert result.exit_code == 1  # before: "not a valid ONNX protobuf (field number 0)"
    assert "ModelFileError" in result.output and "rnnedge export" in result.output, result.output
