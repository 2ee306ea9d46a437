"""Checkpoints as untrusted files and configurations out of range (docs/bad_input.md).

A checkpoint is only ever read with ``torch.load(weights_only=True)``: a pickle that would run code is
refused before any of it runs, and the message never suggests the unsafe way round.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnedge.errors import CheckpointError, ConfigError
from rnnedge.training.checkpoint import load_checkpoint, save_checkpoint
from rnnedge.training.config import (
    LanguageModelConfig,
    LanguageTrainConfig,
    SequenceClassifierConfig,
    SequenceTrainConfig,
)
from rnnedge.training.kinds import build_from_checkpoint


class _TouchOnLoad:
    """Unpickling this object would create ``marker``: proof that code in the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip-format", "legacy-format"])
def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path: Path, zip_format: bool) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"kind": "mnist-lstm", "model": {"w": _TouchOnLoad(marker)}, "config": {}}
    torch.save(payload, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "refused by the safe loader (weights_only=True)" in message and str(path) in message
    assert "Unsupported global" in message  # what came in: a global the safe loader does not allow
    assert "weights_only=False" not in message and "\x1b[" not in message  # no unsafe advice, no terminal codes
    assert not marker.exists()


def test_files_that_are_not_checkpoints(tmp_path: Path, tiny_checkpoint: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.pt").write_text("a text file")
    data = tiny_checkpoint.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:100])
    cases = [
        (tmp_path / "empty.pt", "starts with b''"),
        (tmp_path / "notes.pt", "starts with b'a te', not like a file torch.save writes"),
        (tmp_path / "cut.pt", "unreadable (truncated or not a checkpoint)"),
        (tmp_path, "is not a file"),
        (tmp_path / "absent.pt", "does not exist"),
    ]
    for path, message in cases:
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        assert message in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(lambda c: {**c, "kind": ["mnist-lstm"]}, "kind: list", id="kind-list"),
        pytest.param(lambda c: {**c, "model": 5}, "model: int", id="model-int"),
        pytest.param(lambda c: {**c, "config": [24]}, "config: list", id="config-list"),
        pytest.param(
            lambda c: {k: v for k, v in c.items() if k != "config"},
            "lacks the fields ('kind', 'model', 'config')",
            id="no-config",
        ),
    ],
)
def test_checkpoints_with_fields_of_the_wrong_type(
    tiny_checkpoint: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    save_checkpoint(tmp_path / "odd.pt", edit(load_checkpoint(tiny_checkpoint)))
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_checkpoint(tmp_path / "odd.pt")


def test_a_checkpoint_of_another_kind_is_refused(tiny_lm_checkpoint: Path, tmp_path: Path) -> None:
    """What resuming a classifier or a language model asks of the run folder's checkpoint.

    A checkpoint names its registered kind (``language_model``); a name no kind has (e.g. ``ptb``, a
    pre-release spelling) is no alias of one: there is one format before the first release.
    """
    ckpt = load_checkpoint(tiny_lm_checkpoint)
    assert ckpt["kind"] == "language_model"
    save_checkpoint(tmp_path / "old.pt", {**ckpt, "kind": "ptb"})
    with pytest.raises(CheckpointError, match=r"holds a 'ptb' model, expected language_model"):
        load_checkpoint(tmp_path / "old.pt", "language_model")
    with pytest.raises(CheckpointError, match=r"unknown model kind 'ptb'"):
        build_from_checkpoint(load_checkpoint(tmp_path / "old.pt"))
    with pytest.raises(CheckpointError, match=r"holds a 'language_model' model, expected sequence_classifier"):
        load_checkpoint(tiny_lm_checkpoint, "sequence_classifier")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda c: {**c, "config": {**c["config"], "hidden_size": 0}},
            r"hidden_size=0 \(expected an int >= 1\)",
            id="config-out-of-range",
        ),
        pytest.param(
            lambda c: {**c, "config": {**c["config"], "hidden_size": 25}}, "size mismatch", id="weights-do-not-fit"
        ),
        pytest.param(
            lambda c: {**c, "config": {**c["config"], "layers": 2}},  # the field is num_layers
            "unexpected keyword argument 'layers'",
            id="unknown-config-field",
        ),
        pytest.param(
            lambda c: {**c, "model": {**c["model"], "head.bias": c["model"]["head.bias"] * math.nan}},
            "NaN or infinity in head.bias",
            id="nan-weights",
        ),
    ],
)
def test_weights_that_do_not_fit_or_are_not_finite(
    tiny_checkpoint: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    ckpt = edit(load_checkpoint(tiny_checkpoint))
    with pytest.raises(CheckpointError, match=message):
        build_from_checkpoint(ckpt)


@pytest.mark.parametrize(
    ("make", "names"),
    [
        pytest.param(
            lambda: SequenceClassifierConfig(hidden_size=0), ["hidden_size=0", "an int >= 1"], id="hidden-size-0"
        ),
        pytest.param(lambda: SequenceClassifierConfig(num_classes=1), ["num_classes=1", "an int >= 2"], id="one-class"),
        pytest.param(
            lambda: SequenceClassifierConfig(hidden_size=2.5), ["hidden_size=2.5", "an int"], id="hidden-size-float"
        ),  # type: ignore[arg-type]
        pytest.param(
            lambda: SequenceClassifierConfig(bidirectional="yes"),
            ["bidirectional='yes'", "True or False"],
            id="bidirectional-str",
        ),  # type: ignore[arg-type]
        pytest.param(lambda: LanguageModelConfig(dropout=1.0), ["dropout=1.0", "[0, 1)"], id="dropout-1"),
        pytest.param(
            lambda: LanguageModelConfig(num_layers=0, init_scale=0),
            ["num_layers=0", "init_scale=0", "(0, inf)"],
            id="layers-0-init-scale-0",
        ),
        pytest.param(lambda: SequenceTrainConfig(batch_size=0), ["batch_size=0", "an int >= 1"], id="batch-size-0"),
        pytest.param(lambda: SequenceTrainConfig(lr=math.nan), ["lr=nan", "finite number"], id="lr-nan"),
        pytest.param(
            lambda: SequenceTrainConfig(epochs=True), ["epochs=True"], id="epochs-bool"
        ),  # a bool is not a count
        pytest.param(
            lambda: SequenceTrainConfig(max_steps=0), ["max_steps=0", "None or an int >= 1"], id="max-steps-0"
        ),
        pytest.param(lambda: SequenceTrainConfig(shift=-1), ["shift=-1", "an int >= 0"], id="shift-negative"),
        pytest.param(
            lambda: SequenceTrainConfig(normalize="pixel"), ["normalize='pixel'", "channel", "global"], id="normalize"
        ),
        pytest.param(lambda: LanguageTrainConfig(lr_decay=0), ["lr_decay=0", "(0, 1]"], id="lr-decay-0"),
        pytest.param(
            lambda: LanguageTrainConfig(num_steps=-1, clip_norm=math.inf),
            ["num_steps=-1", "clip_norm=inf"],
            id="num-steps-negative-clip-inf",
        ),
    ],
)
def test_configurations_out_of_range(make: Any, names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert all(n in str(info.value) for n in names), str(info.value)
