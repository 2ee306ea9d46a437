"""What a new user hit trying rnnedge from its README (issue 22), each held by a test (docs/bad_input.md).

The runs are real and tiny: a one-layer LSTM of 32 on a few hundred lines of PTB's text, one
torch thread, a few dozen steps, driven through the ``rnnedge`` command (click's ``CliRunner``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rnnedge.cli.main import cli

TINY_LM = ["--hidden-size", "32", "--num-layers", "1", "--batch-size", "8", "--max-steps", "20", "--threads", "1"]


def invoke(args: list[str], status: int = 0) -> Result:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == status, (result.output, result.exception)
    assert "Traceback" not in result.output
    return result


def write_text_corpus(ptb_data: Path, folder: Path, lines: tuple[int, int, int] = (400, 40, 40)) -> Path:
    """``folder/{train,valid,test}.txt``: the first lines of PTB's three files."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), lines, strict=True):
        text = (ptb_data / "ptb" / f"ptb.{split}.txt").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / f"{split}.txt").write_text("".join(text[:n]), encoding="utf-8")
    return folder


# -- 1: a language model on a relative corpus path gets its int8 file ------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_language_model_of_a_relative_corpus_path_exports_its_int8_file(ptb_data: Path, in_tmp: Path) -> None:
    """`train lm --corpus lee` then `export ... --quantize int8` in the same folder, single and batch."""
    write_text_corpus(ptb_data, in_tmp / "lee")
    invoke(["train", "lm", "--corpus", "lee", "--out", "runs/lee-words", *TINY_LM, "--quiet"])
    result = invoke(["export", "runs/lee-words/checkpoint.pt", "-o", "lee-words.onnx", "--quantize", "int8"])
    assert "failed" not in result.output and (in_tmp / "lee-words.int8.onnx").is_file()
    batch = invoke(["export", "runs", "-o", "dist", "--quantize", "int8"])
    entries = json.loads((in_tmp / "dist" / "manifest.json").read_text())["models"]
    assert [(e["variant"], e["status"]) for e in entries] == [("float32", "ok"), ("int8", "ok")], batch.output
    # The run records where its text is wherever the command runs next.
    from rnnedge.training.checkpoint import load_checkpoint

    data = load_checkpoint(in_tmp / "runs" / "lee-words" / "checkpoint.pt")["data"]
    assert data["test"] == str(in_tmp / "lee" / "test.txt") and Path(data["test"]).is_absolute()


def test_a_missing_recorded_file_names_only_the_places_looked_at(in_tmp: Path) -> None:
    from rnnedge.data.datasets import find_data_file
    from rnnedge.errors import DataError

    data = in_tmp / "data"
    data.mkdir()
    with pytest.raises(DataError) as caught:
        find_data_file("lee/test.txt", data)
    looked = str(caught.value).split("(looked at ")[1].split(");")[0].split(", ")
    assert looked == [str(in_tmp / "lee" / "test.txt"), str(data / "lee" / "test.txt"), str(data / "test.txt")]
    # A run recorded before paths were absolute finds its text from the folder it ran in.
    write_corpus = in_tmp / "lee"
    write_corpus.mkdir()
    (write_corpus / "test.txt").write_text("a b\n")
    assert find_data_file("lee/test.txt", data) == Path("lee/test.txt")


# -- 9: perplexity of a file with a byte that is not UTF-8 says where, as training does ------------


def test_perplexity_of_a_file_that_is_not_utf8_names_line_and_column_as_training_does(
    tiny_lm_onnx: Path, tmp_path: Path
) -> None:
    from rnnedge.data.corpus import load_text_corpus
    from rnnedge.errors import DataError

    text = tmp_path / "latin1.txt"
    text.write_bytes("the company said\nit will\nsell caf\xe9 shares\n".encode("latin-1"))
    result = invoke(["perplexity", str(tiny_lm_onnx), str(text)], 1)
    assert f"InputError: {text}, line 3, column 9: byte 0xe9 is not UTF-8" in result.output
    with pytest.raises(DataError) as training:
        load_text_corpus(text, text, text)
    assert str(training.value) in result.output  # the same words, from the same reader


# -- 11: messages said once, and said right ----------------------------------------------------------


def sigint_on_first_call(real: Callable[..., Any]) -> Callable[..., Any]:
    """``real``, whose first call receives a SIGINT first (the handler runs at the next bytecode, as a Ctrl-C's)."""
    calls = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    return wrapped


def test_a_ctrl_c_is_reported_once_and_a_resumed_epoch_reports_its_whole_time(
    ptb_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not --quiet: the log's line says where to resume (it was said twice, once with 'Interrupted:').

    Five steps of at least 0.25 s each, a Ctrl-C in the validation, then --resume: the validation the
    resumed run makes reports the epoch's seconds, the first session's included (it said "(0 s)").
    """
    import torch

    from rnnedge.training import train_lm as module

    corpus = write_text_corpus(ptb_data, tmp_path / "lee")
    run = tmp_path / "run"
    args = ["train", "lm", "--corpus", str(corpus), "--out", str(run), *TINY_LM[:-4], "--max-steps", "5"]
    clip = torch.nn.utils.clip_grad_norm_

    def slow_clip(*a: Any, **k: Any) -> Any:  # one call a training step
        time.sleep(0.25)
        return clip(*a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", slow_clip)
    monkeypatch.setattr(module, "evaluate_perplexity", sigint_on_first_call(module.evaluate_perplexity))
    interrupted = invoke([*args, "--threads", "1"], 130)
    monkeypatch.undo()
    assert interrupted.output.count("interrupted at step 5 of 5: checkpoint written to") == 1, interrupted.output
    assert "Interrupted:" not in interrupted.output

    resumed = invoke([*args, "--threads", "1", "--resume"])
    valid = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    seconds = next(r["epoch_seconds"] for r in valid if r["event"] == "valid")
    assert seconds >= 1.2, seconds
    said = re.search(r"epoch 1: .* valid perplexity [\d.]+ \((\d+) s\)", resumed.output)
    assert said and int(said.group(1)) >= 1, resumed.output
