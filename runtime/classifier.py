"""Sequence classifiers (images read row by row, a user's sequences): ``predict`` and streaming of rows.

Graph contract (see the metadata): input ``x`` float32 ``(batch, sequence, features)``,
already normalised, and for format-version-2 files ``lengths`` int64 ``(batch,)``;
outputs ``logits`` and ``probs`` float32 ``(batch, classes)`` for the whole prefix seen so
far. Raw inputs are normalised here as the metadata says: with ``standardize`` (every file
since format version 2, MNIST's included) any finite real values become ``(x - mean[f]) /
std[f]`` per channel; with ``preprocessing`` (format-1 files) uint8 pixels are scaled by
``scale`` (1/255) and float inputs must already be in ``[0, 1]``.
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
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class ClassifierCodec(Codec):
    """Rows in (raw values; a format-1 file's uint8 pixels or floats in [0, 1]), normalised as the metadata says."""

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
        std = metadata.standardize
        self._channel_mean = np.asarray(std.mean, dtype=np.float32) if std else None
        self._channel_std = np.asarray(std.std, dtype=np.float32) if std else None
        self._channels = np.arange(size)
        self._channel_values: np.ndarray | None = None  # (256, F): what each uint8 value becomes in each channel
        if self._channel_mean is not None and self._channel_std is not None:
            values = np.arange(256, dtype=np.float32)[:, None] - self._channel_mean  # as _standardise_channels does
            values /= self._channel_std
            values.flags.writeable = False
            self._channel_values = values

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        """Subtract the mean and divide by the std, in place and in float32, in the order training applies them."""
        pre = self.metadata.preprocessing
        if pre is not None:
            x -= np.float32(pre.mean)
            x /= np.float32(pre.std)
        return x

    def preprocess(self, rows: Any) -> np.ndarray:
        """uint8 pixels or floats in [0, 1] (raw real values for ``standardize``), ``(..., features)`` -> float32."""
        channels = self._channel_mean is not None
        if not isinstance(rows, np.ndarray):
            takes = "real numbers" if channels else "uint8 pixels or floats in [0, 1]"
            raise InputError(f"rows must be a numpy array of {takes}, got {describe(rows)}")
        if rows.size == 0:
            raise InputError(f"rows must not be empty, got {describe(rows)}")
        if rows.shape[-1] != self.feature_size:
            values = f"{self.feature_size} values" + (" (channels)" if channels else "")
            raise InputError(f"each row must have {values}, got {describe(rows)}")
        if rows.dtype == _UINT8:  # pixels, say: one table look-up, the values the arithmetic would give
            return self._look_up(rows)
        if channels:
            return self._standardise_channels(rows)
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

    def _look_up(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 values ``(..., features)`` -> normalised float32, by the table of the file's normalisation."""
        if self._channel_values is not None:
            per_channel: np.ndarray = self._channel_values[pixels, self._channels]
            return per_channel
        one_for_all: np.ndarray = self._pixel_values[pixels]
        return one_for_all

    def _standardise_channels(self, rows: np.ndarray) -> np.ndarray:
        """Raw values of an int or float dtype (checked here: finite, within float32) -> ``(x - mean[f]) / std[f]``."""
        assert self._channel_mean is not None and self._channel_std is not None
        if rows.dtype.kind not in "iuf":
            raise InputError(f"rows must be ints or floats, got {describe(rows)}")
        if rows.dtype.kind == "f" and not all_finite(rows):
            raise InputError(f"rows contain NaN or infinity ({describe(rows)})")
        if rows.dtype.itemsize > 4 or rows.dtype.kind != "f":  # checked before the cast, which would overflow
            biggest = float(np.abs(rows).max())
            if biggest > _FLOAT32_MAX:
                raise InputError(f"rows hold values beyond float32's range (up to {biggest:g}, {describe(rows)})")
        x = rows.astype(np.float32)  # a copy: the caller's array is never changed
        x -= self._channel_mean
        x /= self._channel_std
        return x

    def to_graph(self, rows: Any) -> np.ndarray:
        """One row ``(F,)`` or rows ``(T, F)`` -> the graph input ``(1, T, F)``, normalised."""
        if isinstance(rows, np.ndarray) and rows.shape == self._row_shape and rows.dtype == _UINT8:
            return self._look_up(rows[None, None])  # one row of pixels: the streaming case
        if not isinstance(rows, np.ndarray) or rows.ndim not in (1, 2):
            raise InputError(
                f"feed takes one row ({self.feature_size},) or rows (T, {self.feature_size}), got {describe(rows)}"
            )
        return self.preprocess(rows if rows.ndim == 2 else rows[None])[None]

    def stack(self, items: list[Any]) -> np.ndarray | None:
        """One uint8 row ``(F,)`` for every stream -> ``(N, 1, F)`` normalised."""
        shape = self._row_shape
        if all(isinstance(r, np.ndarray) and r.dtype == _UINT8 and r.shape == shape for r in items):
            return self._look_up(np.stack(items)[:, None])
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
    """A sequence classifier; causal or not (bidirectional)."""

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
        """Values per row (28 for MNIST; the channels of a user's sequences)."""
        return self.codec.feature_size

    def preprocess(self, rows: Any) -> np.ndarray:
        """Raw values (a format-1 file: uint8 pixels or floats in [0, 1]), shape ``(..., features)`` -> float32."""
        return self.codec.preprocess(rows)

    def predict(self, images: Any, batch_size: int = 256, *, lengths: Any = None) -> np.ndarray:
        """Class probabilities ``(N, classes)`` for ``N`` sequences of rows.

        ``images``: an array ``(N, T, features)`` (any ``T >= 1``: a prefix of rows), or a list of
        ``(T_i, features)`` arrays of any lengths. Each result is what that sequence alone gives
        (what a stream fed its rows returns). Files whose graph takes lengths run a list padded,
        ``batch_size`` sequences per onnxruntime call; older files run each length apart.
        ``lengths`` (with an array): the valid rows of each sequence, the rest being padding.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise InputError(f"batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(images, (list, tuple)) and all(isinstance(s, np.ndarray) for s in images):
            if lengths is not None:
                raise InputError("lengths go with a padded array; a list of sequences carries its own")
            return self._predict_list(list(images), int(batch_size))
        if not isinstance(images, np.ndarray) or images.ndim != 3:
            got = describe(images)
            if isinstance(images, (list, tuple)) and images:  # say what the list holds, not just that it is one
                got += f" holding {', '.join(sorted({type(s).__name__ for s in images}))}"
            raise InputError(
                f"images must be an array of shape (N, T, {self.feature_size}) or a list of numpy arrays of shape "
                f"(T, {self.feature_size}), one per sequence, got {got}"
            )
        if images.shape[0] == 0 or images.shape[1] == 0:
            raise InputError(f"images must hold at least one image of at least one row, got {describe(images)}")
        engine = self.engine
        valid = engine.check_lengths(lengths, images.shape[0], images.shape[1])
        if valid is not None:  # padding may hold anything (NaN included): only valid rows are read
            images = images.copy()
            images[np.arange(images.shape[1])[None, :] >= valid[:, None]] = images[0, 0]
        x = self.preprocess(images)
        out = []
        for i in range(0, len(x), batch_size):
            chunk = x[i : i + batch_size]
            part = None if valid is None else valid[i : i + batch_size]
            out.append(engine.run(chunk, engine.init_state(len(chunk)), part)[0]["probs"])
        return np.concatenate(out)

    def _predict_list(self, sequences: list[Any], batch_size: int) -> np.ndarray:
        """``predict`` of sequences of different lengths: padded with ``lengths``, or grouped by length."""
        if not sequences:
            raise InputError("predict takes at least one sequence, got an empty list")
        rows = []
        for i, s in enumerate(sequences):
            if not isinstance(s, np.ndarray) or s.ndim != 2 or s.shape[0] == 0:
                raise InputError(
                    f"sequence {i} must be an array of shape (T, {self.feature_size}) with T >= 1, got {describe(s)}"
                )
            try:
                rows.append(self.preprocess(s))
            except InputError as e:
                raise InputError(f"sequence {i}: {e}") from None
        engine = self.engine
        result = np.empty((len(rows), len(self.labels)), dtype=np.float32)
        if self.metadata.lengths is None:  # an older file: one call per length, no padding
            by_length: dict[int, list[int]] = {}
            for i, r in enumerate(rows):
                by_length.setdefault(r.shape[0], []).append(i)
            for members in by_length.values():
                for lo in range(0, len(members), batch_size):
                    idx = members[lo : lo + batch_size]
                    x = np.stack([rows[i] for i in idx])
                    result[idx] = engine.run(x, engine.init_state(len(idx)))[0]["probs"]
            return result
        for lo in range(0, len(rows), batch_size):
            part = rows[lo : lo + batch_size]
            lengths = np.array([r.shape[0] for r in part], dtype=np.int64)
            x = np.zeros((len(part), int(lengths.max()), self.feature_size), dtype=np.float32)  # (B, T_max, F)
            for j, r in enumerate(part):
                x[j, : r.shape[0]] = r
            result[lo : lo + len(part)] = engine.run(x, engine.init_state(len(part)), lengths)[0]["probs"]
        return result

    def stream(self) -> Stream:
        """A stream fed rows as they arrive; ``feed`` returns class probabilities ``(classes,)``.

        For a non-causal (bidirectional) model, every ``feed`` re-reads the whole prefix
        in the backward direction, so a chunk costs O(prefix length); the result is what
        ``predict`` gives on the prefix received so far.
        """
        return Stream(self.engine)


register_kind("causal_classifier", ClassifierCodec, ClassifierModel)
register_kind("noncausal_classifier", ClassifierCodec, ClassifierModel)
