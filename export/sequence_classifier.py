"""Export of the ``sequence_classifier`` kind: a user's variable-length sequences in, class probabilities out.

The graph (:func:`~rnnedge.export.graphs.sequence_classifier_graph`) takes ``lengths`` beside ``x``,
so the file is format version 2; the metadata's ``standardize`` carries the training split's
per-channel mean and std (the runtime applies them to raw values), ``labels`` the class names as
the training file writes them. Quality is measured on the checkpoint's own test file, through the
runtime (:func:`sequence_file_quality`); nothing here knows a dataset by name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from rnnedge.errors import CheckpointError
from rnnedge.runtime import ClassifierModel, load
from rnnedge.runtime.evaluation import accuracy_on_file
from rnnedge.runtime.metadata import Standardize
from rnnedge.training.models import SequenceClassifier

from .graphs import sequence_classifier_graph
from .kinds import ExportKind, register
from .quality import CLASSIFY_CHUNK, Measured, test_file_of
from .reference import torch_reference
from .structure import Recurrent, Stage
from .validate import Reference, magnitude, running_sum, unit

__all__ = [
    "KIND",
    "checkpoint_labels",
    "sequence_classifier_fields",
    "sequence_classifier_reference",
    "sequence_file_quality",
]


def _standardize(ckpt: Mapping[str, Any], channels: int) -> Standardize:
    raw = ckpt.get("standardize")
    if not isinstance(raw, Mapping):
        raise CheckpointError(
            f"a {ckpt['kind']!r} checkpoint must carry its per-channel normalisation (standardize: {{mean, std}}); "
            f"it has {raw!r:.200}"
        )
    parts = []
    for key in ("mean", "std"):
        values = raw.get(key)
        if (
            not isinstance(values, (list, tuple))
            or len(values) != channels
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        ):
            raise CheckpointError(
                f"checkpoint standardize.{key} is {values!r:.200}; expected {channels} finite numbers, one per channel"
            )
        parts.append(tuple(float(v) for v in values))
    if min(parts[1]) <= 0:
        raise CheckpointError(f"checkpoint standardize.std has {min(parts[1])}; expected every std > 0")
    return Standardize(parts[0], parts[1])


def checkpoint_labels(ckpt: Mapping[str, Any], num_classes: int) -> tuple[str, ...]:
    """A classifier checkpoint's class names, checked against its model's number of classes."""
    raw = ckpt.get("labels")
    if raw is None:
        raise CheckpointError(f"a {ckpt['kind']!r} checkpoint must carry its class labels; this one has none")
    if not isinstance(raw, (list, tuple)) or not all(isinstance(x, str) for x in raw) or len(raw) != num_classes:
        raise CheckpointError(
            f"checkpoint labels are {raw!r:.200}; expected {num_classes} strings, one per class of its model"
        )
    return tuple(raw)


def sequence_classifier_fields(ckpt: Mapping[str, Any], model: SequenceClassifier) -> dict[str, Any]:
    """The kind's metadata fields: kind, standardize and labels from the checkpoint, training's quality, notes."""
    cfg = model.config
    metrics = ckpt.get("metrics") or {}
    return {
        "kind": "causal_classifier" if cfg.causal else "noncausal_classifier",
        "causal": cfg.causal,
        "quality": {k: float(v) for k, v in metrics.items() if k in ("test_accuracy", "valid_accuracy")},
        "standardize": _standardize(ckpt, cfg.input_size),
        "labels": checkpoint_labels(ckpt, cfg.num_classes),
        "notes": {
            "input": "x: raw values per channel become (x - mean)/std with `standardize`; lengths: valid steps of "
            "each sequence (the rest of x is padding)",
            "outputs": "logits and probs (softmax) of each sequence's whole prefix fed so far",
            "quality": "test_accuracy, valid_accuracy: measured by training, in PyTorch, on the files in config.data",
        },
    }


def sequence_classifier_reference(model: SequenceClassifier) -> Reference:
    """PyTorch's streaming forward, in float32 and float64, with each quantity's scale for validation."""
    names = model.state_names

    def forward(
        module: nn.Module, x: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        assert isinstance(module, SequenceClassifier)
        logits, new = module.forward_stream(x, tuple(state[n] for n in names))
        return {"logits": logits, "probs": torch.softmax(logits, -1)}, dict(zip(names, new, strict=True))

    def make_input(batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((batch, length, model.config.input_size)).astype(np.float32)

    scales = {"probs": unit, "logits": magnitude, "h": unit, "c": magnitude, "h_sum": running_sum, "steps": unit}
    return torch_reference(model, forward, make_input, scales={**scales, "prefix": unit})


def sequence_file_quality(model_path: Path, data: str | os.PathLike[str] | None = None) -> Measured:
    """``test_accuracy`` on the model's test file (:func:`~.quality.test_file_of`), through the runtime.

    As ``rnnedge classify FILE`` computes it: the file's labelled sequences, :data:`CLASSIFY_CHUNK`
    per ``predict`` call.
    """
    with load(model_path, provider="cpu") as model:
        if not isinstance(model, ClassifierModel):
            raise TypeError(f"{model_path} is a {model.kind}, not a classifier")
        test_file = test_file_of(model.metadata, data)
        accuracy = accuracy_on_file(model, test_file)
    how = (
        f"`rnnedge classify FILE --test {test_file.name}`: its {accuracy.count} sequences, {CLASSIFY_CHUNK} per "
        "predict call, CPU provider"
    )
    return Measured({"test_accuracy": accuracy.value}, {"test_accuracy": how})


def sequence_classifier_file_graph(model: SequenceClassifier) -> onnx.ModelProto:
    """The graph of rnnedge's own classifier: its recurrence and head, its head's input from its config,
    and its convolutional branch (one the structure reader, which reads a user's modules, does not take)."""
    net = Recurrent((Stage(model.rnn, "rnn"),), model.head)
    blocks = model.conv.blocks() if model.conv is not None else []
    return sequence_classifier_graph(net, model.config.head, blocks)


KIND = register(
    ExportKind(
        name="sequence_classifier",
        main_input="x",
        graph=sequence_classifier_file_graph,
        reference=sequence_classifier_reference,
        describe=sequence_classifier_fields,
        measure=sequence_file_quality,
        lengths_input="lengths",
    )
)
