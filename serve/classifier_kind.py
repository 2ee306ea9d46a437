"""``serve`` for causal classifiers: rows of numbers in, the labels' probabilities out (:data:`ROWS`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnedge.runtime import ClassifierModel, InputError, Model

from .kinds import ServeKind, register_serve_kind
from .outcomes import per_feed

__all__ = ["ROWS"]


def _clf(model: Model) -> ClassifierModel:
    assert isinstance(model, ClassifierModel)  # registered for classifier (and tagger) files only
    return model


def _read_input(model: Model, value: Any, strict: bool) -> tuple[np.ndarray, int]:
    """One row or a list of rows -> what a stream's ``feed`` takes, and its number of steps (rows)."""
    rows = _rows(value, _clf(model).feature_size)
    length = model.stream_input(rows).shape[1]  # the runtime's checks now, so a bad feed is refused alone
    return (rows[0] if rows.ndim == 2 and rows.shape[0] == 1 else rows), length


def _rows(value: Any, width: int) -> np.ndarray:
    """A classifier feed's JSON rows -> an array of the values the model takes.

    Every value is raw (the file's ``standardize`` applies); ints in 0..255 go as uint8, which the
    runtime standardises by one table look-up, with the same values. A row of the wrong width is
    named here, in the client's terms (JSON lists), before any conversion.
    """
    if not isinstance(value, list):
        raise InputError(f"input must be one row (a list of numbers) or a list of rows, got {value!r:.60}")
    try:
        rows = np.array(value)
    except (ValueError, TypeError, OverflowError):
        raise InputError("rows must be lists of numbers, all of one length") from None
    if rows.ndim in (1, 2) and rows.shape[-1] != width:
        given = f"a row of {rows.shape[0]}" if rows.ndim == 1 else f"{rows.shape[0]} row(s) of {rows.shape[1]}"
        raise InputError(f"each row must hold {width} numbers (the model's features), got {given}")
    if rows.dtype.kind in "iu":
        lo, hi = (int(rows.min()), int(rows.max())) if rows.size else (0, 0)
        if lo >= 0 and hi <= 255:
            return rows.astype(np.uint8)
    return rows  # floats (float64), other ints: range-checked by the runtime; anything else refused there by dtype


ROWS = ServeKind(
    labels=lambda model: tuple(_clf(model).labels),
    read_input=_read_input,
    unit="rows",
    opened=lambda model: {"labels": list(_clf(model).labels)},
    outcomes=per_feed,
)
"""Rows in, one distribution per feed out: the prefix's so far."""

register_serve_kind(("causal_classifier", "noncausal_classifier"), ROWS)
