"""Command-line arguments out of range and inputs the commands refuse (docs/bad_input.md).

An argument outside its range is click's usage error (status 2, naming the option); a value the
library refuses is one ``Error: <TypedError>: ...`` line (status 1). Never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from rnnedge.cli.main import cli


def run(args: list[str], status: int, *names: str) -> Result:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == status, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for name in names:
        assert name in result.output, result.output
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-bad")
    (folder / "empty.txt").write_text("")
    (folder / "latin1.txt").write_bytes(b"caf\xe9\n")
    (folder / "words.txt").write_text("the company said\n")
    (folder / "notes.pt").write_text("not a checkpoint")
    (folder / "no-checkpoints").mkdir()
    return folder


USAGE_ERRORS = [
    pytest.param(
        ["classify", "{clf}", "--limit", "0"], ["--limit", "0 is not in the range x>=1"], id="classify-limit-0"
    ),
    pytest.param(
        ["classify", "{clf}", "--provider", "tpu"], ["--provider", "'tpu' is not one of"], id="classify-provider-tpu"
    ),
    pytest.param(
        ["generate", "{lm}", "--temperature", "0"],
        ["--temperature", "0.0 is not in the range x>0"],
        id="generate-temperature-0",
    ),
    pytest.param(["generate", "{lm}", "--top-k", "0"], ["--top-k"], id="generate-top-k-0"),
    pytest.param(["generate", "{lm}", "--max-words", "-1"], ["--max-words"], id="generate-max-words-negative"),
    pytest.param(
        ["generate", "{lm}", "--max-words", "many"],
        ["--max-words", "'many' is not a valid integer"],
        id="generate-max-words-not-a-number",
    ),
    pytest.param(["generate", "{lm}", "--seed", "-1"], ["--seed"], id="generate-seed-negative"),
    pytest.param(
        ["perplexity", "{lm}", "{files}/missing.txt"], ["missing.txt", "does not exist"], id="perplexity-missing-file"
    ),
    pytest.param(["perplexity", "{lm}", "{files}/words.txt", "--window", "0"], ["--window"], id="perplexity-window-0"),
    pytest.param(["next-word", "{lm}", "--k", "0"], ["--k"], id="next-word-k-0"),
    pytest.param(["info", "{files}"], ["is a directory"], id="info-a-folder"),
    pytest.param(
        ["train", "ptb", "--out", "{files}/run", "--dropout", "1.0"],
        ["--dropout", "0.0<=x<1.0"],
        id="train-ptb-dropout-1",
    ),
    pytest.param(
        ["train", "ptb", "--out", "{files}/run", "--config", "huge"],
        ["--config", "'huge' is not one of"],
        id="train-ptb-config-unknown",
    ),
    pytest.param(["train", "ptb", "--out", "{files}/run", "--threads", "0"], ["--threads"], id="train-ptb-threads-0"),
    pytest.param(["train", "mnist-lstm", "--out", "{files}/run", "--lr", "0"], ["--lr", "x>0"], id="train-lr-0"),
    pytest.param(
        ["train", "mnist-lstm", "--out", "{files}/run", "--batch-size", "0"], ["--batch-size"], id="train-batch-size-0"
    ),
    pytest.param(
        ["train", "mnist-lstm", "--out", "{files}/run", "--hidden-size", "0"],
        ["--hidden-size"],
        id="train-hidden-size-0",
    ),
    pytest.param(
        ["train", "mnist-lstm", "--out", "{files}/run", "--checkpoint-every", "0"],
        ["--checkpoint-every"],
        id="train-checkpoint-every-0",
    ),
    pytest.param(
        ["train", "mnist-bilstm", "--out", "{files}/run", "--seed", "-1"], ["--seed"], id="train-seed-negative"
    ),
    pytest.param(["train", "mnist-lstm"], ["Missing option '--out'"], id="train-without-out"),
    pytest.param(
        ["train", "mnist-lstm", "--out", "{files}/words.txt"], ["--out", "is a file"], id="train-out-is-a-file"
    ),
    pytest.param(["demo", "--digits", "21"], ["--digits", "1<=x<=20"], id="demo-digits-21"),
    pytest.param(
        ["export", "{ckpt}", "{ckpt}", "-o", "{files}/x.onnx"],
        ["names one model file", "got 2 paths"],
        id="export-two-checkpoints-to-one-file",
    ),
    pytest.param(
        ["export", "{files}/no-checkpoints", "-o", "{files}/dist"],
        ["no checkpoints"],
        id="export-folder-without-checkpoints",
    ),
    pytest.param(
        ["export", "{ckpt}", "-o", "{files}/x.onnx", "--quantize", "int4"],
        ["--quantize", "'int4'"],
        id="export-quantize-unknown",
    ),
    pytest.param(["plot", "{files}/no-such-run"], ["RUN_DIR", "does not exist"], id="plot-missing-run"),
]


def _fill(args: list[str], **paths: Path) -> list[str]:
    return [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]


@pytest.mark.parametrize(("args", "names"), USAGE_ERRORS)
def test_arguments_out_of_range_are_usage_errors(
    args: list[str], names: list[str], files: Path, tmp_path: Path
) -> None:
    paths = {"files": files, "clf": tmp_path / "clf.onnx", "lm": tmp_path / "lm.onnx", "ckpt": files / "notes.pt"}
    run(_fill(args, **paths), 2, *names)
    assert not (files / "run").exists() and not (files / "dist").exists()


def test_a_model_of_the_wrong_kind(tiny_onnx: Path, tiny_lm_onnx: Path, files: Path) -> None:
    run(["classify", str(tiny_lm_onnx), "--limit", "5"], 1, "is a language_model, not a classifier")
    run(["generate", str(tiny_onnx), "--max-words", "2"], 1, "is a causal_classifier, not a language model")
    run(["perplexity", str(tiny_onnx), str(files / "words.txt")], 1, "not a language model")
    run(["next-word", str(tiny_onnx)], 1, "not a language model")


def test_values_the_library_refuses_are_typed_errors(tiny_lm_onnx: Path, files: Path) -> None:
    lm = str(tiny_lm_onnx)
    run(["generate", lm, "--temperature", "nan"], 1, "InputError: temperature must be a finite number > 0, got nan")
    run(["generate", lm, "--top-k", "100000"], 1, "InputError: top_k must be None or an int in [1, 10000]")
    run(["generate", lm, "--prompt", "", "--max-words", "2"], 1, "InputError: no words given")
    run(["perplexity", lm, str(files / "empty.txt")], 1, "InputError: perplexity needs at least 2 tokens")
    run(["perplexity", lm, str(files / "latin1.txt")], 1, "InputError:", "line 1, column 4", "is not UTF-8")
    run(["info", str(files / "missing.onnx")], 1, "ModelFileError: cannot read model file", "missing.onnx")
    run(["info", str(files / "words.txt")], 1, "ModelFileError: cannot load", "words.txt")


def test_training_settings_click_cannot_see(files: Path) -> None:
    # click's FloatRange lets NaN through (every comparison with NaN is false): the config refuses it.
    out = files / "nan-run"
    run(["train", "mnist-lstm", "--out", str(out), "--lr", "nan"], 1, "ConfigError", "lr=nan", "finite number")
    run(["train", "ptb", "--out", str(out), "--dropout", "nan"], 1, "ConfigError", "dropout=nan")
    assert not out.exists()


def test_checkpoints_the_export_command_refuses(files: Path, tmp_path: Path) -> None:
    run(["export", str(files / "notes.pt"), "-o", str(tmp_path / "m.onnx")], 1, "CheckpointError", "notes.pt")
    marker = tmp_path / "pwned"

    class TouchOnLoad:
        def __reduce__(self) -> tuple[object, ...]:
            return (Path.touch, (marker,))

    torch.save({"kind": "mnist-lstm", "model": TouchOnLoad(), "config": {}}, tmp_path / "evil.pt")
    run(["export", str(tmp_path / "evil.pt"), "-o", str(tmp_path / "m.onnx")], 1, "refused by the safe loader")
    assert not marker.exists() and not (tmp_path / "m.onnx").exists()


def test_a_test_file_that_moved_is_looked_for_by_name(tiny_onnx: Path, files: Path, data_dir: Path) -> None:
    """A model records its test file; moved (another machine), it is found by name in --data, else a DataError."""
    import json

    import onnx

    graph = onnx.load(str(tiny_onnx))
    meta = json.loads(graph.metadata_props[0].value)
    meta["config"]["data"]["test"] = "/elsewhere/mnist/t10k-images-idx3-ubyte.gz"
    graph.metadata_props[0].value = json.dumps(meta)
    moved = files / "moved.onnx"
    onnx.save(graph, str(moved))
    result = run(["classify", str(moved), "--data", str(files / "nowhere"), "--limit", "5"], 1, "DataError")
    assert f"mnist files missing from {files / 'nowhere' / 'mnist'}" in result.output  # a folder given: not written
    assert "Put the files in" in result.output
    found = ["classify", str(moved), "--data", str(data_dir), "--limit", "5"]
    run(found, 0, "5 sequences of t10k-images-idx3-ubyte.gz")
    meta["config"]["data"]["test"] = "/elsewhere/sensors/test.ts"  # not a dataset the cache fetches
    graph.metadata_props[0].value = json.dumps(meta)
    onnx.save(graph, str(moved))
    result = run(["classify", str(moved), "--data", str(files), "--limit", "5"], 1, "DataError")
    assert "the recorded data file /elsewhere/sensors/test.ts is not here (looked at" in result.output
    assert str(files / "sensors" / "test.ts") in result.output and str(files / "test.ts") in result.output
