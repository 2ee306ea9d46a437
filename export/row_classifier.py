"""Export of the ``rnn_classifier`` kind: rows in, class probabilities of the prefix out, with streaming state."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rnnedge.errors import CheckpointError
from rnnedge.runtime.metadata import Preprocessing
from rnnedge.training.models import RowLSTMClassifier

from .graphs import classifier_graph
from .kinds import ExportKind, register
from .quality import classifier_quality
from .validate import Reference, magnitude, running_sum, unit

__all__ = ["KIND", "checkpoint_labels", "classifier_fields", "classifier_reference"]

# Checkpoints of kind mnist-lstm / mnist-bilstm written before checkpoints carried their own
# preprocessing and labels were all trained on MNIST pixels with these values; only they fall back.
_MNIST_KINDS = ("mnist-lstm", "mnist-bilstm")
_MNIST_PREPROCESSING = {"scale": 1 / 255, "mean": 0.1307, "std": 0.3081}


def _preprocessing(ckpt: Mapping[str, Any]) -> Preprocessing:
    raw = ckpt.get("preprocessing")
    if raw is None and ckpt["kind"] in _MNIST_KINDS:
        raw = _MNIST_PREPROCESSING  # an old MNIST checkpoint (see _MNIST_KINDS)
    if raw is None:
        raise CheckpointError(
            f"a {ckpt['kind']!r} checkpoint must carry its input preprocessing ({{scale, mean, std}}); "
            "this one has none"
        )
    values = [raw.get(k) for k in ("scale", "mean", "std")] if isinstance(raw, Mapping) else []
    if len(values) != 3 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise CheckpointError(f"checkpoint preprocessing is {raw!r:.200}; expected {{scale, mean, std}} finite numbers")
    scale, mean, std = (float(v) for v in values if v is not None)
    if scale <= 0 or std <= 0:
        raise CheckpointError(f"checkpoint preprocessing is {raw!r:.200}; expected scale > 0 and std > 0")
    return Preprocessing(scale=scale, mean=mean, std=std)


def checkpoint_labels(ckpt: Mapping[str, Any], num_classes: int) -> tuple[str, ...]:
    """A classifier checkpoint's class names, checked against its model's number of classes."""
    raw = ckpt.get("labels")
    if raw is None and ckpt["kind"] in _MNIST_KINDS:
        return tuple(str(i) for i in range(num_classes))  # an old MNIST checkpoint: the digits
    if raw is None:
        raise CheckpointError(f"a {ckpt['kind']!r} checkpoint must carry its class labels; this one has none")
    if not isinstance(raw, (list, tuple)) or not all(isinstance(x, str) for x in raw) or len(raw) != num_classes:
        raise CheckpointError(
            f"checkpoint labels are {raw!r:.200}; expected {num_classes} strings, one per class of its model"
        )
    return tuple(raw)


def classifier_fields(ckpt: Mapping[str, Any], model: RowLSTMClassifier) -> dict[str, Any]:
    """The classifier's own metadata fields: kind, preprocessing and labels from the checkpoint, quality."""
    cfg = model.config
    metrics = ckpt.get("metrics") or {}
    return {
        "kind": "noncausal_classifier" if cfg.bidirectional else "causal_classifier",
        "causal": not cfg.bidirectional,
        "quality": {k: float(v) for k, v in metrics.items() if k in ("test_accuracy", "valid_accuracy")},
        "preprocessing": _preprocessing(ckpt),
        "labels": checkpoint_labels(ckpt, cfg.num_classes),
        "notes": {
            "input": "x: rows normalised as (value*scale - mean)/std; the runtime applies this from `preprocessing`",
            "outputs": "logits and probs (softmax) of the whole prefix fed so far",
            "quality": "test_accuracy, valid_accuracy: measured by training, in PyTorch, on the held-out images",
        },
    }


def classifier_reference(model: RowLSTMClassifier) -> Reference:
    """PyTorch's streaming forward in numpy terms, with each quantity's scale for validation."""

    @torch.no_grad()
    def run(x: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        names = list(state)
        logits, new = model.forward_stream(
            torch.from_numpy(x), tuple(torch.from_numpy(np.array(state[n])) for n in names)
        )
        outputs = {"logits": logits.numpy(), "probs": torch.softmax(logits, -1).numpy()}
        return outputs, {n: t.numpy() for n, t in zip(names, new, strict=True)}

    def make_input(batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((batch, length, model.config.input_size)).astype(np.float32)

    scales = {
        "probs": unit,
        "logits": magnitude,
        "h": unit,  # an LSTM's output: tanh-bounded
        "c": magnitude,
        "h_sum": running_sum,  # the sum of one h per row so far
        "steps": unit,  # a count: exact
        "prefix": unit,  # the rows received, copied
    }
    return Reference(run=run, make_input=make_input, scales=scales)


KIND = register(
    ExportKind(
        name="rnn_classifier",
        main_input="x",
        graph=classifier_graph,
        reference=classifier_reference,
        describe=classifier_fields,
        measure=classifier_quality,
    )
)
