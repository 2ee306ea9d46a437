"""Sequence classifiers (a user's sequences of real-valued rows; MNIST images read row by row).

Graph contract (see the metadata): input ``x`` float32 ``(batch, sequence, features)``,
already standardised, and ``lengths`` int64 ``(batch,)``; outputs ``logits`` and ``probs``
float32 ``(batch, classes)`` for the whole prefix seen so far. Raw inputs (any finite real
values, numpy arrays or plain lists) become ``(x - mean[f]) / std[f]`` per channel, as the
metadata's ``standardize`` says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .checks import all_finite, describe
from .errors import InputError, ModelFileError, StateError
from .kinds import register_kind
from .metadata import ModelMetadata
from .model import Model
from .network import ModelConfig, Network

__all__ = ["ClassifierModel"]

_UINT8 = np.dtype(np.uint8)  # dtype == dtype: 2.5× faster than dtype == np.uint8 (the type), on a hot path
MAX_EXACT_ROWS = 2**24  # float32 counts integers exactly up to here
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class ClassifierModel(Model):
    """A sequence classifier, causal or not: ``predict`` whole sequences, or stream their rows."""

    STREAM_OUTPUTS: ClassVar[tuple[str, ...] | None] = ("probs",)
    UNIT: ClassVar[str] = "row"
    WORKLOAD: ClassVar[tuple[int, int]] = (256, 28)  # 256 MNIST images of 28 rows
    EXAMPLE_STEP: ClassVar[str] = "uint8 row"
    EXAMPLE_BATCH: ClassVar[str] = "uint8 images"

    def read_metadata(self) -> None:
        """The feature size, the standardisation (and its table for uint8 values); the labels must be there."""
        metadata = self.metadata
        size = metadata.input.shape[-1]
        assert isinstance(size, int)  # the metadata parser guarantees a fixed feature size
        std = metadata.standardize
        if std is None or metadata.labels is None:
            raise ModelFileError(
                f"{self.path}: a classifier file must say its standardize and labels (export it again)"
            )
        self.feature_size = size
        self._row_shape = (size,)
        self._channel_mean = np.asarray(std.mean, dtype=np.float32)
        self._channel_std = np.asarray(std.std, dtype=np.float32)
        self._channels = np.arange(size)
        # What each uint8 value becomes in each channel, computed once with the float32 operations an
        # array of them would go through: a row of pixels is then standardised by one table look-up.
        values = np.arange(256, dtype=np.float32)[:, None] - self._channel_mean
        values /= self._channel_std
        values.flags.writeable = False  # shared by every caller
        self._channel_values = values

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names, indexed like the probabilities."""
        assert self.metadata.labels is not None
        return self.metadata.labels

    @property
    def names(self) -> tuple[str, ...]:
        """A result's entries are the classes."""
        return self.labels

    @classmethod
    def network(cls, metadata: ModelMetadata) -> Network:
        """Stacked (bidirectional) layers over ``input_size`` channels; the head reads the last layer once
        (and a convolutional branch's ``conv_channels`` beside it, a cost this estimate leaves out)."""
        cfg = ModelConfig(metadata)
        layers = cfg.layers(cfg.size("input_size"), one_layer_default=True)  # a row classifier has one
        _, hidden, directions, _ = layers[-1]
        conv = cfg.size("conv_channels") if cfg.raw.get("conv_channels") else 0  # absent before the branch existed
        return Network(layers, (directions * hidden + conv, cfg.size("num_classes")), head_every_step=False)

    @classmethod
    def info_fields(cls, metadata: ModelMetadata) -> dict[str, Any]:
        """Standardisation and class names."""
        fields: dict[str, Any] = {}
        if metadata.standardize:
            fields["standardize"] = {"mean": list(metadata.standardize.mean), "std": list(metadata.standardize.std)}
        if metadata.lengths:
            fields["lengths"] = metadata.lengths.as_dict()
        if metadata.labels:
            fields["labels"] = list(metadata.labels)
        return fields

    # -- rows in -------------------------------------------------------------------------------
    def preprocess(self, rows: Any) -> np.ndarray:
        """Raw values, an array (or nested lists) of shape ``(..., features)`` -> standardised float32."""
        if isinstance(rows, (list, tuple)):
            rows = _array_of_numbers(rows, "rows")
        if not isinstance(rows, np.ndarray):
            raise InputError(f"rows must be a numpy array (or lists) of real numbers, got {describe(rows)}")
        if rows.size == 0:
            raise InputError(f"rows must not be empty, got {describe(rows)}")
        if rows.ndim == 0 or rows.shape[-1] != self.feature_size:
            raise InputError(f"each row must have {self.feature_size} values (channels), got {describe(rows)}")
        if rows.dtype == _UINT8:  # pixels, say: one table look-up, the values the arithmetic would give
            return self._look_up(rows)
        return self._standardise(rows)

    def _look_up(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 values ``(..., features)`` -> standardised float32, by the table."""
        per_channel: np.ndarray = self._channel_values[pixels, self._channels]
        return per_channel

    def _standardise(self, rows: np.ndarray) -> np.ndarray:
        """Raw values of an int or float dtype (checked here: finite, within float32) -> ``(x - mean[f]) / std[f]``."""
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

    def stream_input(self, rows: Any, *, strict: bool = False) -> np.ndarray:
        """One row ``(F,)`` or rows ``(T, F)`` (arrays or lists) -> the graph input ``(1, T, F)``, standardised."""
        if isinstance(rows, np.ndarray) and rows.shape == self._row_shape and rows.dtype == _UINT8:
            return self._look_up(rows[None, None])  # one row of pixels: the streaming case
        if isinstance(rows, (list, tuple)):
            rows = _array_of_numbers(rows, "rows")
        if not isinstance(rows, np.ndarray) or rows.ndim not in (1, 2):
            raise InputError(
                f"feed takes one row ({self.feature_size},) or rows (T, {self.feature_size}), got {describe(rows)}"
            )
        return self.preprocess(rows).reshape(1, -1, self.feature_size)  # checked as given: errors name its shape

    def stack_inputs(self, items: Sequence[Any]) -> np.ndarray | None:
        """One uint8 row ``(F,)`` for every stream -> ``(N, 1, F)`` standardised."""
        shape = self._row_shape
        if all(isinstance(r, np.ndarray) and r.dtype == _UINT8 and r.shape == shape for r in items):
            return self._look_up(np.stack(items)[:, None])
        return None

    def prepare(self, batch: Any) -> np.ndarray:
        """Sequences of rows ``(N, T, F)`` -> the graph input, standardised."""
        return self.preprocess(batch)

    def example_steps(self, rng: np.random.Generator, length: int) -> list[Any]:
        """``length`` rows of random uint8 values (pixels), one per step."""
        return list((rng.random((length, self.feature_size)) * 255).astype(np.uint8))

    def example_batch(self, rng: np.random.Generator, batch: int, length: int) -> Any:
        """``batch`` random uint8 sequences ``(batch, length, features)``."""
        return (rng.random((batch, length, self.feature_size)) * 255).astype(np.uint8)

    # -- checks only a classifier needs ---------------------------------------------------------
    def check_state_values(self, arrays: Mapping[str, Any]) -> None:
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

    # -- whole sequences ------------------------------------------------------------------------
    def predict(self, sequences: Any, batch_size: int = 256, *, lengths: Any = None) -> np.ndarray:
        """Class probabilities ``(N, classes)`` for ``N`` sequences of rows.

        ``sequences``: an array ``(N, T, features)`` (any ``T >= 1``: a prefix of rows), or a list of
        ``(T_i, features)`` sequences (arrays or lists of rows) of any lengths. Each result is what
        that sequence alone gives (what a stream fed its rows returns); a list runs padded,
        ``batch_size`` sequences per onnxruntime call. ``lengths`` (with an array): the valid rows
        of each sequence, the rest being padding.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise InputError(f"batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(sequences, (list, tuple)):
            if lengths is not None:
                raise InputError("lengths go with a padded array; a list of sequences carries its own")
            return self._predict_list(list(sequences), int(batch_size))
        if not isinstance(sequences, np.ndarray) or sequences.ndim != 3:
            raise InputError(
                f"sequences must be an array of shape (N, T, {self.feature_size}) or a list of sequences of shape "
                f"(T, {self.feature_size}), got {describe(sequences)}"
            )
        if sequences.shape[0] == 0 or sequences.shape[1] == 0:
            raise InputError(
                f"sequences must hold at least one sequence of at least one row, got {describe(sequences)}"
            )
        valid = self.check_lengths(lengths, sequences.shape[0], sequences.shape[1])
        if valid is not None:  # padding may hold anything (NaN included): only valid rows are read
            sequences = sequences.copy()
            sequences[np.arange(sequences.shape[1])[None, :] >= valid[:, None]] = sequences[0, 0]
        x = self.preprocess(sequences)
        out = []
        for i in range(0, len(x), batch_size):
            chunk = x[i : i + batch_size]
            part = None if valid is None else valid[i : i + batch_size]
            out.append(self.run(chunk, self.init_state(len(chunk)), part)[0]["probs"])
        return np.concatenate(out)

    def _predict_list(self, sequences: list[Any], batch_size: int) -> np.ndarray:
        """``predict`` of sequences of different lengths, padded, with ``lengths``."""
        if not sequences:
            raise InputError("predict takes at least one sequence, got an empty list")
        rows = []
        for i, s in enumerate(sequences):
            if isinstance(s, (list, tuple)):
                s = _array_of_numbers(s, f"sequence {i}")
            if not isinstance(s, np.ndarray) or s.ndim != 2 or s.shape[0] == 0:
                raise InputError(
                    f"sequence {i} must be an array of shape (T, {self.feature_size}) with T >= 1 (or a list of "
                    f"rows), got {describe(s)}"
                )
            try:
                rows.append(self.preprocess(s))
            except InputError as e:
                raise InputError(f"sequence {i}: {e}") from None
        result = np.empty((len(rows), len(self.labels)), dtype=np.float32)
        for lo in range(0, len(rows), batch_size):
            part = rows[lo : lo + batch_size]
            lengths = np.array([r.shape[0] for r in part], dtype=np.int64)
            x = np.zeros((len(part), int(lengths.max()), self.feature_size), dtype=np.float32)  # (B, T_max, F)
            for j, r in enumerate(part):
                x[j, : r.shape[0]] = r
            result[lo : lo + len(part)] = self.run(x, self.init_state(len(part)), lengths)[0]["probs"]
        return result


def _array_of_numbers(value: Sequence[Any], what: str) -> np.ndarray:
    """Plain (nested) lists of numbers, as JSON gives them -> a numpy array; anything else an :class:`InputError`."""
    try:
        a = np.array(value)
    except (ValueError, TypeError, OverflowError):
        raise InputError(f"{what} must be lists of numbers, all of one length") from None
    if a.dtype.kind not in "iuf":
        raise InputError(f"{what} must hold numbers, got {a.dtype} values")
    return a


register_kind("causal_classifier", ClassifierModel)
register_kind("noncausal_classifier", ClassifierModel)
