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
    # The run records its text's absolute paths: found from any folder.
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
    (in_tmp / "lee").mkdir()
    (in_tmp / "lee" / "test.txt").write_text("a b\n")
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


# -- 12: one text file split in three; the --corpus error says each thing once ---------------------


def test_train_lm_splits_one_file_by_lines_and_records_how(ptb_data: Path, tmp_path: Path) -> None:
    from rnnedge.data.corpus import split_text_file
    from rnnedge.training.checkpoint import load_checkpoint

    one = tmp_path / "one_file.txt"
    lines = (ptb_data / "ptb" / "ptb.train.txt").read_text(encoding="utf-8").splitlines(keepends=True)[:500]
    one.write_text("".join(lines), encoding="utf-8")
    run = tmp_path / "run"
    args = ["train", "lm", "--train", str(one), "--split", "0.8,0.1,0.1", "--out", str(run), *TINY_LM, "--quiet"]
    metrics = json.loads(invoke(args).stdout.strip().splitlines()[-1])
    assert metrics["test_perplexity"] > 1
    parts = [(run / "text" / f"{name}.txt").read_text(encoding="utf-8") for name in ("train", "valid", "test")]
    assert parts == ["".join(lines[:400]), "".join(lines[400:450]), "".join(lines[450:])]  # in order, by lines
    assert split_text_file(one, (0.8, 0.1, 0.1)) == tuple(parts)  # the same file, the same parts
    data = load_checkpoint(run / "checkpoint.pt")["data"]
    assert data["split"] == {"file": str(one), "fractions": [0.8, 0.1, 0.1], "lines": [400, 50, 50]}
    assert data["test"] == str(run / "text" / "test.txt")
    # The int8 export measures the test part; a resume finds its parts unchanged.
    exported = invoke(["export", str(run / "checkpoint.pt"), "-o", str(tmp_path / "one.onnx"), "--quantize", "int8"])
    assert "quality: float_test_perplexity" in exported.output and "failed" not in exported.output
    invoke([*args[:-1], "--max-steps", "25", "--resume", "--quiet"])


@pytest.mark.parametrize(
    ("more", "said"),
    [
        (["--split", "0.8,0.1"], "expected three fractions > 0 that sum to 1"),
        (["--split", "0.8,0.3,0.1"], "expected three fractions > 0 that sum to 1"),
        (["--split", "1,0,0"], "expected three fractions > 0 that sum to 1"),
        (["--split", "0.8,0.1,0.1", "--test", "ONE"], "give --train FILE alone with it"),
    ],
)
def test_bad_splits_are_usage_errors(tmp_path: Path, more: list[str], said: str) -> None:
    one = tmp_path / "one.txt"
    one.write_text("a b c\n" * 10)
    more = [str(one) if m == "ONE" else m for m in more]
    result = invoke(["train", "lm", "--train", str(one), *more, "--out", str(tmp_path / "r")], 2)
    assert said in result.output and not (tmp_path / "r").exists()


def test_a_file_too_short_to_split_says_which_part_is_empty(tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("a b c\nd e f\n")
    result = invoke(["train", "lm", "--train", str(one), "--split", "0.8,0.1,0.1", "--out", str(tmp_path / "r")], 1)
    assert "splitting the 2 line(s) of" in result.output and "leaves no line for valid and test" in result.output


def test_an_earlier_split_in_the_run_folder_is_not_replaced_without_overwrite(tmp_path: Path) -> None:
    from rnnedge.data.corpus import write_corpus_files
    from rnnedge.errors import ConfigError

    folder = tmp_path / "text"
    write_corpus_files(("a\n", "b\n", "c\n"), folder)
    write_corpus_files(("a\n", "b\n", "c\n"), folder)  # the same text: nothing to replace
    with pytest.raises(ConfigError, match=r"test.txt already hold\(s\) other text"):
        write_corpus_files(("a\n", "b\n", "d\n"), folder)
    assert (folder / "test.txt").read_text() == "c\n"
    write_corpus_files(("a\n", "b\n", "d\n"), folder, replace=True)
    assert (folder / "test.txt").read_text() == "d\n"


def test_the_corpus_folder_error_lists_each_file_once(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(["train", "lm", "--corpus", str(empty), "--out", str(tmp_path / "r")], 1)
    assert "holds none of train.txt, valid.txt, test.txt; put the three texts there" in result.output
    assert result.output.count("train.txt") == 1 and "--split" in result.output
    (empty / "train.txt").write_text("a\n")
    result = invoke(["train", "lm", "--corpus", str(empty), "--out", str(tmp_path / "r")], 1)
    assert "lacks valid.txt, test.txt (it holds train.txt)" in result.output
