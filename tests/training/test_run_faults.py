"""What a new user hit running ``rnnedge train`` (issue 12), each held by a test (docs/bad_input.md).

Run folders that already hold a run, Ctrl-C (status 130, a checkpoint at the interrupt, a
validation it cut short run on ``--resume``), extending a finished run, resume refusals that
name what differs, unwritable output folders, and settings the data cannot serve.

The runs are real (MNIST, a slice of PTB) and tiny: an 8-unit LSTM, batches of 1,000 images,
a few dozen steps, one torch thread. A Ctrl-C is a real SIGINT sent to this process from
inside a step or an evaluation, so the handler the loop installs is what is under test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
import torch
from click.testing import CliRunner, Result

from rnnedge.cli.main import cli
from rnnedge.errors import CheckpointError
from rnnedge.training.checkpoint import check_resumable, load_checkpoint

TINY = ["--hidden-size", "8", "--batch-size", "1000", "--seed", "1", "--quiet"]


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: runs compared bit for bit sum in one order (and a shared CPU runs faster)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def invoke(args: list[str], status: int = 0) -> Result:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == status, (result.output, result.exception)
    assert "Traceback" not in result.output
    return result


def mnist_args(data: Path, out: Path, *more: str) -> list[str]:
    return ["train", "mnist-lstm", "--data", str(data), "--out", str(out), *TINY, *more]


def last_json(result: Result) -> dict[str, Any]:
    metrics: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return metrics


def records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def sigint_on_call(target: Any, name: str, when: Callable[[int], bool]) -> Callable[..., Any]:
    """Wrap ``target.name`` so that its ``n``-th call (from 1) for which ``when(n)`` holds receives a SIGINT first."""
    real = getattr(target, name)
    calls = {"n": 0}

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if when(calls["n"]):
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs at the next bytecode, as a real Ctrl-C
        return real(*args, **kwargs)

    return wrapped


@pytest.fixture(scope="module")
def finished(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 20-step run (55 steps make an epoch: the only validation is the final one)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    invoke(mnist_args(data_dir, out, "--max-steps", "20"))
    return out


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


# -- run folders ---------------------------------------------------------------------------------


def test_a_folder_that_holds_a_run_is_refused_without_resume_or_overwrite(
    finished: Path, data_dir: Path, tmp_path: Path
) -> None:
    run = copy_of(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = invoke(mnist_args(data_dir, run, "--max-steps", "5"), 1)
    assert "ConfigError" in result.output and "already holds a training run" in result.output
    assert "--resume" in result.output and "--overwrite" in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before, "the earlier run must be untouched"

    invoke(mnist_args(data_dir, run, "--max-steps", "5", "--resume", "--overwrite"), 1)  # one or the other
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before

    invoke(mnist_args(data_dir, run, "--max-steps", "5", "--overwrite"))
    assert load_checkpoint(run / "checkpoint.pt")["progress"]["step"] == 5
    assert [r["step"] for r in records(run) if r["event"] == "valid"] == [5]
    assert (run / "train.log").read_text().count("training mnist-lstm") == 1, "the old log is replaced, not mixed"


def test_resume_without_a_checkpoint_is_refused(data_dir: Path, tmp_path: Path) -> None:
    for folder in (tmp_path / "typo", tmp_path):  # a mistyped folder; a folder without a checkpoint
        result = invoke(mnist_args(data_dir, folder, "--resume"), 1)
        assert "CheckpointError: cannot resume" in result.output and str(folder) in result.output
    assert not (tmp_path / "typo").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", ["/proc/rnnedge-run", "/dev/null/run"])
def test_an_output_folder_that_cannot_be_created_is_a_message(data_dir: Path, out: str) -> None:
    result = invoke(mnist_args(data_dir, Path(out)), 1)
    assert f"ConfigError: cannot create the run folder {out}" in result.output


def test_a_batch_larger_than_the_training_set_is_refused(data_dir: Path, tmp_path: Path) -> None:
    result = invoke(mnist_args(data_dir, tmp_path / "run", "--batch-size", "100000"), 1)
    assert "ConfigError: batch_size=100000 is more than the 54998 training sequences" in result.output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# -- resume --------------------------------------------------------------------------------------


def test_a_finished_run_can_be_extended(finished: Path, data_dir: Path, tmp_path: Path) -> None:
    run = copy_of(finished, tmp_path)
    metrics = last_json(invoke(mnist_args(data_dir, run, "--max-steps", "30", "--resume")))
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["progress"]["step"] == 30 and ckpt["progress"]["done"]
    assert ckpt["train_config"]["max_steps"] == 30
    assert metrics["step"] == 30 and "valid_accuracy" in metrics and "test_accuracy" in metrics
    events = [(r["event"], r["step"]) for r in records(run)]
    assert events == [("valid", 20), ("valid", 30), ("test", 30)], "one test, of the extended model"


def test_a_resume_refusal_names_the_settings_that_differ(finished: Path, data_dir: Path, tmp_path: Path) -> None:
    run = copy_of(finished, tmp_path)
    result = invoke(mnist_args(data_dir, run, "--max-steps", "30", "--resume", "--hidden-size", "9", "--lr", "0.01"), 1)
    assert "cannot resume" in result.output
    assert (
        "hidden_size (checkpoint 8, this run 9)" in result.output
        and "lr (checkpoint 0.002, this run 0.01)" in result.output
    )
    assert "input_size" not in result.output and "batch_size" not in result.output, "only what differs"

    ckpt = load_checkpoint(run / "checkpoint.pt")
    with pytest.raises(CheckpointError) as info:
        check_resumable(ckpt, run, {**ckpt["config"], "hidden_size": 9}, ckpt["train_config"])
    assert str(info.value).count("(checkpoint") == 1


# -- Ctrl-C --------------------------------------------------------------------------------------


def test_ctrl_c_checkpoints_exits_130_and_resume_ends_as_an_uninterrupted_run(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = ["--max-steps", "30", "--checkpoint-every", "100"]  # no checkpoint before the interrupt
    whole = last_json(invoke(mnist_args(data_dir, tmp_path / "whole", *budget)))

    run = tmp_path / "run"
    # The Ctrl-C lands in the 12th step's loss (one cross-entropy a step).
    loss = sigint_on_call(torch.nn.functional, "cross_entropy", lambda n: n == 12)
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", loss)
    result = invoke(mnist_args(data_dir, run, *budget), 130)
    monkeypatch.undo()
    assert "Aborted!" not in result.output
    assert "interrupted at step 12 of 30" in result.output and "--resume" in result.output
    progress = load_checkpoint(run / "checkpoint.pt")["progress"]
    assert progress["step"] == 12 and not progress["done"], "a checkpoint at the interrupt, after the step under way"

    resumed = last_json(invoke(mnist_args(data_dir, run, *budget, "--resume")))
    assert {k: v for k, v in resumed.items() if k != "train_seconds"} == {
        k: v for k, v in whole.items() if k != "train_seconds"
    }
    a, b = (load_checkpoint(folder / "checkpoint.pt") for folder in (tmp_path / "whole", run))
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


def test_ctrl_c_during_the_final_validation_is_validated_on_resume(
    finished: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnedge.training import train_sequences as module

    run = tmp_path / "run"
    monkeypatch.setattr(module, "evaluate", sigint_on_call(module, "evaluate", lambda n: n == 1))
    result = invoke(mnist_args(data_dir, run, "--max-steps", "20"), 130)
    monkeypatch.undo()
    assert "interrupted at step 20 of 20" in result.output
    assert "valid_accuracy" not in load_checkpoint(run / "checkpoint.pt")["metrics"]

    metrics = last_json(invoke(mnist_args(data_dir, run, "--max-steps", "20", "--resume")))
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert metrics["step"] == 20 and "valid_accuracy" in metrics and "valid_accuracy" in ckpt["metrics"]
    assert [(r["event"], r["step"]) for r in records(run)] == [("valid", 20), ("test", 20)]
    assert ckpt["metrics"]["valid_accuracy"] == load_checkpoint(finished / "checkpoint.pt")["metrics"]["valid_accuracy"]


def test_ptb_ctrl_c_during_the_final_validation_then_resume(
    ptb_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run used to end with 'no train or validation metrics in metrics.jsonl' after the resume."""
    from rnnedge.training import train_lm as module

    sliced = tmp_path / "data" / "ptb"
    sliced.mkdir(parents=True)
    for split, lines in (("train", 300), ("valid", 20), ("test", 20)):  # 16 windows an epoch
        text = (ptb_data / "ptb" / f"ptb.{split}.txt").read_text().splitlines(keepends=True)[:lines]
        (sliced / f"ptb.{split}.txt").write_text("".join(text))
    run = tmp_path / "run"
    args = ["train", "ptb", "--data", str(sliced.parent), "--custom", "--out", str(run), "--max-steps", "5"]
    args += ["--threads", "1", "--quiet"]
    monkeypatch.setattr(module, "evaluate_perplexity", sigint_on_call(module, "evaluate_perplexity", lambda n: n == 1))
    result = invoke(args, 130)
    monkeypatch.undo()
    assert "interrupted at step 5 of 5" in result.output and "--resume" in result.output

    metrics = last_json(invoke([*args, "--resume"]))
    assert "valid_perplexity" in metrics and "test_perplexity" in metrics
    assert "valid_perplexity" in load_checkpoint(run / "checkpoint.pt")["metrics"]
    assert [(r["event"], r["step"]) for r in records(run)] == [("valid", 5), ("test", 5)]


# -- the command line ----------------------------------------------------------------------------


def test_mnist_training_takes_threads_and_gives_them_back(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--threads`` was a ``train ptb`` option only (an unknown option for ``mnist-*``)."""
    seen: list[int] = []
    real = torch.nn.functional.cross_entropy

    def loss(*args: Any, **kwargs: Any) -> Any:  # once a training step
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", loss)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        args = ["train", "mnist-bilstm", "--data", str(data_dir), "--out", str(tmp_path / "run"), *TINY]
        invoke([*args, "--max-steps", "2", "--threads", "1"])
        assert seen == [1, 1] and torch.get_num_threads() == 2, "one thread for the run, the caller's after it"
    finally:
        torch.set_num_threads(saved)


def test_demo_announces_the_budget_it_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rnnedge.cli import demo

    def stop(*args: Any, **kw: Any) -> dict[str, Any]:
        raise click.ClickException(f"stopped with {kw['max_steps']} steps, {kw['epochs']} epochs")

    monkeypatch.setattr(demo, "train_mnist_run", stop)
    result = invoke(["demo", "--out", str(tmp_path / "demo"), "--max-steps", "60"], 1)
    assert "training the row-LSTM for at most 60 steps" in result.output and "epoch(s)" not in result.output
    result = invoke(["demo", "--out", str(tmp_path / "demo")], 1)
    assert "for 3 epoch(s)" in result.output


def test_demo_replaces_its_own_run_and_refuses_one_it_did_not_make(
    finished: Path, data_dir: Path, tmp_path: Path
) -> None:
    theirs = copy_of(finished, tmp_path)  # a user's run, say the tour's runs/digits
    before = {p.name: p.read_bytes() for p in theirs.iterdir()}
    demo = ["demo", "--data", str(data_dir), "--max-steps", "3", "--digits", "1"]
    result = invoke([*demo, "--out", str(theirs)], 1)
    assert "ConfigError" in result.output and "did not make" in result.output and "--overwrite" in result.output
    assert {p.name: p.read_bytes() for p in theirs.iterdir()} == before, "the user's run must be untouched"

    own = tmp_path / "demo"
    invoke([*demo, "--out", str(own)])
    first = (own / "mnist-lstm.onnx").read_bytes()
    result = invoke([*demo, "--out", str(own), "--max-steps", "4"])  # again: its own run, replaced
    assert f"replacing the earlier run in {own}" in result.output
    assert load_checkpoint(own / "checkpoint.pt")["progress"]["step"] == 4
    assert (own / "mnist-lstm.onnx").read_bytes() != first

    invoke([*demo, "--out", str(theirs), "--overwrite"])  # asked for
    assert load_checkpoint(theirs / "checkpoint.pt")["progress"]["step"] == 3


def test_every_config_field_is_an_option_with_its_default_and_range() -> None:
    from dataclasses import fields

    from rnnedge.training.config import (
        LanguageModelConfig,
        LanguageTrainConfig,
        SequenceClassifierConfig,
        SequenceTrainConfig,
    )

    for command, classes, fixed in (
        (
            "mnist-lstm",
            (SequenceTrainConfig, SequenceClassifierConfig),
            ("input_size", "num_classes", "bidirectional", "conv_channels"),
        ),
        ("classifier", (SequenceTrainConfig, SequenceClassifierConfig), ("input_size", "num_classes")),
        ("ptb", (LanguageTrainConfig, LanguageModelConfig), ("vocab_size",)),
    ):
        text = invoke(["train", command, "--help"]).output
        for cls in classes:
            for f in fields(cls):
                if f.name not in fixed:
                    assert "--" + f.name.replace("_", "-") in text, (command, f.name)
    assert "[default: 200; x>=1]" in " ".join(invoke(["train", "classifier", "--help"]).output.split())
    assert "[default: 200] [x>=1]" in " ".join(invoke(["train", "mnist-lstm", "--help"]).output.split())
