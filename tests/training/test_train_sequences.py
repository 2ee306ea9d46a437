"""Training a classifier on a user's sequence files (``rnnedge train classifier``), on the real UEA files."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sequence_models import gunpoint, train_tiny_sequences, vowels

torch = pytest.importorskip("torch", reason="training needs the train extra")

from rnnedge.cli.main import cli  # noqa: E402
from rnnedge.errors import CheckpointError, ConfigError, DataError  # noqa: E402
from rnnedge.training.checkpoint import load_checkpoint  # noqa: E402
from rnnedge.training.config import SequenceClassifierConfig, SequenceTrainConfig  # noqa: E402
from rnnedge.training.models import SequenceClassifier  # noqa: E402
from rnnedge.training.train_sequences import train_sequence_classifier  # noqa: E402


@pytest.mark.parametrize(
    ("cell", "layers", "bidirectional", "head", "conv"),
    [
        *itertools.product(["lstm", "gru"], [1, 2], [False, True], ["mean", "last"], [0]),
        ("lstm", 1, False, "last", 4),
        ("gru", 2, True, "mean", 4),
    ],
)
def test_padding_changes_nothing(cell: str, layers: int, bidirectional: bool, head: str, conv: int) -> None:
    torch.manual_seed(0)
    cfg = SequenceClassifierConfig(
        input_size=3,
        num_classes=4,
        cell=cell,
        hidden_size=6,
        num_layers=layers,
        bidirectional=bidirectional,
        head=head,
        conv_channels=conv,
    )
    model = SequenceClassifier(cfg)
    model(torch.randn(4, 9, 3))  # a training step's batch statistics: the batch norms' are no longer 0 and 1
    model.eval()
    lengths = torch.tensor([5, 1, 9])
    x = torch.randn(3, 9, 3) * 1e3  # padding of huge values: any leak would show
    for i, n in enumerate(lengths.tolist()):
        x[i, :n] = torch.randn(n, 3)
    with torch.no_grad():
        together = model(x, lengths)
        alone = torch.cat([model(x[i : i + 1, :n]) for i, n in enumerate(lengths.tolist())])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
        if cfg.causal:  # the streaming reference: whole chunk at once == step by step
            state = model.init_state(1)
            for t in range(9):
                logits, state = model.forward_stream(x[2:3, t : t + 1], state)
            torch.testing.assert_close(logits, alone[2:3], atol=1e-5, rtol=0)


def test_a_convolutional_branch_trains_as_if_there_were_no_padding() -> None:
    """In training the batch norms' statistics count the valid steps only: more padding, the same step."""
    torch.manual_seed(0)
    cfg = SequenceClassifierConfig(input_size=3, num_classes=4, hidden_size=6, conv_channels=4)
    lengths = torch.tensor([5, 1, 9])
    x = torch.randn(3, 9, 3)
    longer = torch.cat([x, torch.full((3, 4, 3), 1e3)], dim=1)  # four more steps of padding each
    results = []
    for inputs in (x, longer):
        torch.manual_seed(1)
        model = SequenceClassifier(cfg).train()
        logits = model(inputs, lengths)
        logits.sum().backward()
        stats = [b.clone() for n in model.conv.norms for b in (n.running_mean, n.running_var)]  # type: ignore[union-attr]
        results.append((logits.detach(), stats, model.conv.convs[0].weight.grad.clone()))  # type: ignore[union-attr]
    (a, a_stats, a_grad), (b, b_stats, b_grad) = results
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a_stats, b_stats)
    torch.testing.assert_close(a_grad, b_grad)


def test_a_checkpoint_records_what_the_runtime_needs(tmp_path: Path) -> None:
    ckpt_path = train_tiny_sequences(tmp_path / "run", epochs=2, cell="gru")
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["kind"] == "sequence_classifier"
    assert ckpt["config"]["input_size"] == 12 and ckpt["config"]["num_classes"] == 9
    assert ckpt["labels"] == [str(k) for k in range(1, 10)]  # as the file writes them
    assert len(ckpt["standardize"]["mean"]) == 12 and min(ckpt["standardize"]["std"]) > 0
    assert ckpt["data"]["test"] == str(vowels("test").resolve()) and ckpt["data"]["valid_fraction"] == 0.2
    assert 0 <= ckpt["metrics"]["test_accuracy"] <= 1 and "valid_accuracy" in ckpt["metrics"]
    assert (tmp_path / "run" / "metrics.jsonl").is_file()


def test_bad_files_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "run"
    model, settings = SequenceClassifierConfig(), SequenceTrainConfig(epochs=1)
    bad = tmp_path / "bad.ts"
    bad.write_text("@problemName x\n@classLabel true a b\n@data\n1,2,x:a\n")
    cases = [
        (dict(train_file=tmp_path / "train.csv", test_file=vowels("test")), DataError, "cannot read sequences"),
        (dict(train_file=tmp_path / "nothere.ts", test_file=vowels("test")), DataError, "no such file"),
        (dict(train_file=bad, test_file=vowels("test")), DataError, "bad.ts:4:"),
        (dict(train_file=vowels("train"), test_file=gunpoint("test")), ConfigError, "has 1 channels per step"),
        (dict(train_file=gunpoint("train"), test_file=vowels("test")), DataError, "JapaneseVowels_TEST.ts"),
    ]
    for files, error, message in cases:
        with pytest.raises(error, match=message):
            train_sequence_classifier(model, settings, out, quiet=True, **files)  # type: ignore[arg-type]
        assert not out.exists()


def test_resume_refuses_other_files(tmp_path: Path) -> None:
    train_tiny_sequences(tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointError, match="it was trained on other data: test"):
        train_sequence_classifier(
            SequenceClassifierConfig(hidden_size=12),
            SequenceTrainConfig(epochs=2, batch_size=32, lr=1e-2),
            tmp_path / "run",
            train_file=vowels("train"),
            test_file=vowels("train"),
            resume=True,
            quiet=True,
        )


def test_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["train", "classifier", "--train", str(vowels("train")), "--test", str(vowels("test"))]
    both = runner.invoke(cli, [*base, "--valid", str(vowels("test")), "--valid-fraction", "0.3", "--out", "x"])
    assert both.exit_code == 2 and "give --valid FILE or --valid-fraction, not both" in both.output
    cell = runner.invoke(cli, [*base, "--cell", "rnn", "--out", "x"])
    assert cell.exit_code == 2 and "'rnn' is not one of 'lstm', 'gru'" in cell.output
    run = tmp_path / "run"
    model = ["--cell", "gru", "--hidden", "8", "--layers", "2", "--head", "last"]
    settings = ["--epochs", "1", "--valid-fraction", "0", "--threads", "1", "--quiet"]
    ok = runner.invoke(cli, [*base, "--out", str(run), *model, *settings])
    assert ok.exit_code == 0, ok.output
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["config"] | {"hidden_size": 8, "num_layers": 2, "head": "last", "cell": "gru"} == ckpt["config"]
    assert "valid_accuracy" not in ckpt["metrics"] and ckpt["data"]["valid_fraction"] is None
    assert np.isfinite(ckpt["metrics"]["test_accuracy"])


def test_an_npz_file_of_string_labels_trains_and_keeps_its_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 20, 40)
    y = np.array(["walk", "run"] * 20)
    x = np.concatenate(
        [rng.normal(0.0 if label == "walk" else 2.0, 1.0, (n, 2)) for n, label in zip(lengths, y, strict=True)]
    )
    for name in ("train", "test"):
        np.savez(tmp_path / f"{name}.npz", x=x, lengths=lengths, y=y)  # the flat layout
    metrics = train_sequence_classifier(
        SequenceClassifierConfig(hidden_size=4),
        SequenceTrainConfig(epochs=2, batch_size=8, valid_fraction=0.25),
        tmp_path / "run",
        train_file=tmp_path / "train.npz",
        test_file=tmp_path / "test.npz",
        quiet=True,
    )
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["labels"] == ["run", "walk"] and ckpt["config"]["input_size"] == 2  # sorted, as the reader documents
    assert 0 <= metrics["test_accuracy"] <= 1


def test_a_declared_class_without_training_sequences_is_warned_of(tmp_path: Path) -> None:
    """GunPoint with a third class in @classLabel that no case has: a warning on stderr and in train.log."""
    text = gunpoint("train").read_text().replace("@classLabel true 1 2", "@classLabel true 1 2 3")
    train = tmp_path / "GunPoint3_TRAIN.ts"
    train.write_text(text)
    args = ["train", "classifier", "--train", str(train), "--test", str(gunpoint("test")), "--out", str(tmp_path / "r")]
    args += ["--hidden-size", "4", "--epochs", "1", "--batch-size", "10", "--threads", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    warning = "warning: no training sequence (after the validation split) has class '3' of 3"
    assert warning in result.stderr and "remove the class" in result.stderr
    assert warning in (tmp_path / "r" / "train.log").read_text()
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["labels"] == ["1", "2", "3"]
