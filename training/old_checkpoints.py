"""Checkpoints written by earlier rnnedge versions, read as today's kinds.

Until the MNIST models became presets of the sequence classifier, ``rnnedge train mnist-lstm`` /
``mnist-bilstm`` wrote a kind of their own (``rnn_classifier``, first named ``mnist-lstm`` /
``mnist-bilstm``): one LSTM layer over pixel rows, mean over time, normalised as
``(pixel * scale - mean) / std``. That network is the sequence classifier with one LSTM layer and
the ``mean`` head, and that normalisation is a standardisation with ``mean / scale`` and
``std / scale`` for every channel, so such a checkpoint is read as a ``sequence_classifier`` one:
it exports, and its file computes what the old file computed. Language-model checkpoints of
Penn Treebank runs did not record their text: they get PTB's file names, which the data folder
resolves (:func:`rnnedge.data.datasets.find_data_file`). Sequence classifiers trained before
``shift``, ``normalize`` and ``patience`` existed trained with no shift, per channel and without early stopping.

An upgraded checkpoint exports but does not resume (``upgraded_from`` says what it was).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rnnedge.data.mnist import PIXEL_MEAN, PIXEL_STD
from rnnedge.errors import CheckpointError

__all__ = ["upgrade_checkpoint"]

_ROW_CLASSIFIER_KINDS = ("rnn_classifier", "mnist-lstm", "mnist-bilstm")
_LANGUAGE_MODEL_KINDS = ("word_lm", "ptb", "gru_lm")
# That kind only ever trained on MNIST: checkpoints written before they carried their own preprocessing,
# labels and files had these.
_MNIST_PREPROCESSING = {"scale": 1 / 255, "mean": PIXEL_MEAN, "std": PIXEL_STD}
_SEQUENCE_TRAIN_DEFAULTS = {"shift": 0, "normalize": "channel", "patience": 0}  # fields added after the first runs
_MNIST_DATA = {"test": "mnist/t10k-images-idx3-ubyte.gz"}
_PTB_DATA = {"tokens": "words", **{s: f"ptb/ptb.{s}.txt" for s in ("train", "valid", "test")}}


def upgrade_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` as today's kinds read it (a new dict; ``ckpt`` itself when it needs nothing)."""
    kind = ckpt["kind"]
    if kind in _ROW_CLASSIFIER_KINDS:
        return _row_classifier(ckpt)
    if kind in _LANGUAGE_MODEL_KINDS and "data" not in ckpt:
        return {**ckpt, "data": dict(_PTB_DATA)}
    train = ckpt.get("train_config")
    if (
        kind == "sequence_classifier"
        and isinstance(train, dict)
        and not _SEQUENCE_TRAIN_DEFAULTS.keys() <= train.keys()
    ):
        return {**ckpt, "train_config": {**_SEQUENCE_TRAIN_DEFAULTS, **train}}
    return ckpt


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _row_classifier(ckpt: dict[str, Any]) -> dict[str, Any]:
    config = ckpt["config"]
    try:
        width, hidden = int(config["input_size"]), int(config["hidden_size"])
        classes, bidirectional = int(config["num_classes"]), bool(config["bidirectional"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"checkpoint config {config!r:.200} is not a row classifier's (input_size, hidden_size, num_classes, "
            "bidirectional)"
        ) from None
    raw = ckpt.get("preprocessing")
    if raw is None:
        raw = _MNIST_PREPROCESSING
    values = [_number(raw.get(k)) for k in ("scale", "mean", "std")] if isinstance(raw, Mapping) else []
    if len(values) != 3 or any(v is None for v in values):
        raise CheckpointError(f"checkpoint preprocessing is {raw!r:.200}; expected {{scale, mean, std}} finite numbers")
    scale, mean, std = (v for v in values if v is not None)
    if scale <= 0 or std <= 0:
        raise CheckpointError(f"checkpoint preprocessing is {raw!r:.200}; expected scale > 0 and std > 0")
    labels = ckpt.get("labels", [str(i) for i in range(classes)])
    return {
        **{k: v for k, v in ckpt.items() if k != "preprocessing"},
        "kind": "sequence_classifier",
        "upgraded_from": ckpt["kind"],
        "config": {
            "input_size": width,
            "num_classes": classes,
            "cell": "lstm",
            "hidden_size": hidden,
            "num_layers": 1,
            "bidirectional": bidirectional,
            "head": "mean",
            "dropout": 0.0,
        },
        "model": {
            ("rnn." + k.removeprefix("lstm.") if k.startswith("lstm.") else k): v for k, v in ckpt["model"].items()
        },
        "standardize": {"mean": [mean / scale] * width, "std": [std / scale] * width},
        "labels": labels,
        "data": ckpt.get("data") or dict(_MNIST_DATA),
    }
