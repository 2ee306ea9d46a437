"""Sequence classifiers (the row-by-row MNIST models): ``predict`` and streaming of rows.

Graph contract (see the metadata): input ``x`` float32 ``(batch, sequence, features)``,
already normalised; outputs ``logits`` and ``probs`` float32 ``(batch, classes)`` for
the whole prefix seen so far. Raw inputs are normalised here with the preprocessing the
metadata records: uint8 pixels are scaled by ``scale`` (1/255), float inputs must
already be in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .codec import Codec
from .engine import Engine, all_finite, describe
from .errors import InputError, StateError
from .kinds import register_kind
from .metadata import ModelMetadata
from .model import Model
from .stream import Stream

__all__ = ["ClassifierCodec", "ClassifierModel"]

_FLOAT_SLACK = 1e-3
_UINT8 = np.dtype(np.uint8)  # dtype == dtype: 2.5× faster than dtype == np.uint8 (the type), on a hot path
MAX_EXACT_ROWS = 2**24  # float32 counts integers exactly up to here


class ClassifierCodec(Codec):
    """Rows in (uint8 pixels or floats in [0, 1]), normalised as the metadata says; class probabilities out."""

    def __init__(self, metadata: ModelMetadata) -> None:
        super().__init__(metadata)
        self.stream_outputs = ("probs",)
        size = metadata.input.shape[-1]
        assert isinstance(size, int)  # the metadata parser guarantees a fixed feature size
        self.feature_size = size
        self._row_shape = (size,)
        # What each uint8 pixel value becomes, computed once with the float32 operations an array
        # of them would go through: a row is then normalised by one table look-up.
        pre = metadata.preprocessing
        table = np.arange(256, dtype=np.float32)
        table *= np.float32(pre.scale if pre else 1.0)
        self._pixel_values = self._standardise(table)
        self._pixel_values.flags.writeable = False  # shared by every caller

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        """Subtract the mean and divide by the std, in place and in float32, in the order training applies them."""
        pre = self.metadata.preprocessing
        if pre is not None:
            x -= np.float32(pre.mean)
            x /= np.float32(pre.std)
        return x

    def preprocess(self, rows: Any) -> np.ndarray:
        """uint8 pixels or floats in [0, 1], shape ``(..., features)`` -> normalised float32."""
        if not isinstance(rows, np.ndarray):
            raise InputError(f"rows must be a numpy array of uint8 pixels or floats in [0, 1], got {describe(rows)}")
        if rows.size == 0:
            raise InputError(f"rows must not be empty, got {describe(rows)}")
        if rows.shape[-1] != self.feature_size:
            raise InputError(f"each row must have {self.feature_size} values, got {describe(rows)}")
        if rows.dtype == _UINT8:
            pixels: np.ndarray = self._pixel_values[rows]
            return pixels
        if rows.dtype not in (np.float16, np.float32, np.float64):
            raise InputError(f"rows must be uint8 pixels or float16/32/64 in [0, 1], got {describe(rows)}")
        if not all_finite(rows):  # checked before the cast, which would turn 1e300 into inf
            raise InputError(f"rows contain NaN or infinity ({describe(rows)})")
        lo, hi = float(rows.min()), float(rows.max())
        if lo < -_FLOAT_SLACK or hi > 1 + _FLOAT_SLACK:
            raise InputError(
                f"float rows must be pixel intensities in [0, 1], got values in [{lo:g}, {hi:g}]; "
                "pass raw 0..255 pixels as uint8"
            )
        return self._standardise(rows.astype(np.float32, order="C"))

    def to_graph(self, rows: Any) -> np.ndarray:
        """One row ``(F,)`` or rows ``(T, F)`` -> the graph input ``(1, T, F)``, normalised."""
        if isinstance(rows, np.ndarray) and rows.shape == self._row_shape and rows.dtype == _UINT8:
            row: np.ndarray = self._pixel_values[rows[None, None]]  # one row of pixels: the streaming case
            return row
        if not isinstance(rows, np.ndarray) or rows.ndim not in (1, 2):
            raise InputError(
                f"feed takes one row ({self.feature_size},) or rows (T, {self.feature_size}), got {describe(rows)}"
            )
        return self.preprocess(rows if rows.ndim == 2 else rows[None])[None]

    def stack(self, items: list[Any]) -> np.ndarray | None:
        """One uint8 row ``(F,)`` for every stream -> ``(N, 1, F)`` normalised."""
        shape = self._row_shape
        if all(isinstance(r, np.ndarray) and r.dtype == _UINT8 and r.shape == shape for r in items):
            rows: np.ndarray = self._pixel_values[np.stack(items)]
            return rows[:, None]
        return None

    def check_state(self, arrays: Mapping[str, Any]) -> None:
        """A bidirectional state's row count must be the length of the prefix it holds (else the mean is wrong)."""
        steps, prefix = arrays.get("steps"), arrays.get("prefix")
        if steps is not None and prefix is not None and not (steps == prefix.shape[1]).all():
            raise StateError(
                f"state part steps says {np.unique(steps).tolist()[:5]} rows, but the prefix holds {prefix.shape[1]}"
            )

    def guard(self, x: np.ndarray, arrays: Mapping[str, Any]) -> None:
        """Refuse to count rows past what the float32 ``steps`` state holds exactly (the mean would drift)."""
        steps = arrays.get("steps")
        if steps is not None:
            seen = steps.item(0) if steps.size == 1 else float(steps.max())  # item(): a step at batch 1 is hot
            if seen + x.shape[1] > MAX_EXACT_ROWS:
                raise InputError(
                    f"a sequence can hold at most {MAX_EXACT_ROWS} rows (the row count is float32); this feed of "
                    f"{x.shape[1]} rows would pass it after {int(seen)}: reset the stream"
                )


class ClassifierModel(Model):
    """A row-by-row classifier; causal (LSTM) or not (bidirectional LSTM)."""

    def __init__(self, engine: Engine, *, state_on_device: bool | None = None) -> None:
        super().__init__(engine, state_on_device=state_on_device)
        assert isinstance(engine.codec, ClassifierCodec)
        self.codec: ClassifierCodec = engine.codec

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names, indexed like the probabilities."""
        assert self.metadata.labels is not None
        return self.metadata.labels

    @property
    def feature_size(self) -> int:
        """Values per row (28 for MNIST)."""
        return self.codec.feature_size

    def preprocess(self, rows: Any) -> np.ndarray:
        """uint8 pixels or floats in [0, 1], shape ``(..., features)`` -> normalised float32."""
        return self.codec.preprocess(rows)

    def predict(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``(N, classes)`` for images ``(N, T, features)`` (any ``T >= 1``: a prefix of rows)."""
        if not isinstance(images, np.ndarray) or images.ndim != 3:
            raise InputError(f"images must be an array of shape (N, T, {self.feature_size}), got {describe(images)}")
        if images.shape[0] == 0 or images.shape[1] == 0:
            raise InputError(f"images must hold at least one image of at least one row, got {describe(images)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise InputError(f"batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        x = self.preprocess(images)
        engine = self.engine
        out = [
            engine.run(x[i : i + batch_size], engine.init_state(len(x[i : i + batch_size])))[0]["probs"]
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(out)

    def stream(self) -> Stream:
        """A stream fed rows as they arrive; ``feed`` returns class probabilities ``(classes,)``.

        For a non-causal (bidirectional) model, every ``feed`` re-reads the whole prefix
        in the backward direction, so a chunk costs O(prefix length); the result is what
        ``predict`` gives on the prefix received so far.
        """
        return Stream(self.engine)


register_kind("causal_classifier", ClassifierCodec, ClassifierModel)
register_kind("noncausal_classifier", ClassifierCodec, ClassifierModel)
