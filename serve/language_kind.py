"""``serve`` for language models: words or token ids in, the vocabulary's probabilities out; generates."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnedge.runtime import InputError, LanguageModel, Model

from .kinds import ServeKind, register_serve_kind
from .outcomes import per_feed


def _lm(model: Model) -> LanguageModel:
    assert isinstance(model, LanguageModel)  # registered for language_model files only
    return model


def _read_input(model: Model, value: Any, strict: bool) -> tuple[np.ndarray, int]:
    """Words (a string or a list of strings) or token ids -> ids ``(T,)`` int64, checked once here."""
    lm = _lm(model)
    if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(w, str) for w in value)):
        ids = lm.encode(value, strict=strict)
    elif isinstance(value, list):
        ids = lm.check_ids(value)
    else:
        raise InputError(f"input must be words (a string or a list of strings) or token ids, got {value!r:.60}")
    return ids, int(ids.size)


register_serve_kind(
    ("language_model",),
    ServeKind(
        labels=lambda model: tuple(_lm(model).vocabulary),
        read_input=_read_input,
        unit="tokens",
        opened=lambda model: {"vocab_size": _lm(model).vocab_size},
        outcomes=per_feed,
        generates=True,
    ),
)
