"""A user's labelled sequences, whatever file they came from, and what training needs from them.

``read_sequences(path)`` reads a UEA/UCR ``.ts`` file (:mod:`.ts`), an ``.npz`` file (:mod:`.npz`) or
an IDX image file read row by row (:mod:`.idx`) into one :class:`SequenceDataset`: a tuple of
``(T_i, F)`` arrays, one per case, unpadded, so that nothing downstream can mistake padding for
data. Beside it:

- :class:`ChannelStats` — per-channel mean and standard deviation over the valid steps of a
  training split (padding never counts, because the sequences hold none), to be stored with the
  model and applied to every split and to the runtime's input.
- :func:`split_validation` — a deterministic, stratified ``--valid-fraction`` split.

Class names are kept as they appear in the file. A second file of the same problem (the test or
validation split) must be read with ``class_names=`` the training split's, so that label ids mean
the same thing in both even where one split lacks a class.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnedge.errors import ConfigError, DataError

__all__ = [
    "ChannelStats",
    "SequenceDataset",
    "SequenceFileError",
    "channel_stats",
    "read_sequences",
    "split_validation",
]

SUFFIXES = (".ts", ".npz")


class SequenceFileError(DataError):  # type: ignore[misc,unused-ignore]  # Any where mypy cannot see rnnedge
    """A sequence file is malformed; the message starts with where: ``path:line:column:`` or ``path: field 'x':``.

    ``path``, ``line`` and ``column`` (1-based; ``None`` where they do not apply) and ``field`` (an
    ``.npz`` array name) are kept as attributes for programs that point at the spot.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        where = str(path)
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.column = column
        self.field = field


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    """Labelled sequences of one split.

    - ``sequences``: one array ``(T_i, F)`` per case, ``T_i >= 1``, every value finite, read-only; float32,
      or uint8 for images (pixels stay what the file holds, as the runtime receives them).
    - ``labels``: int64 ``(N,)``, each an index into ``class_names``.
    - ``class_names``: the classes in their fixed order (a ``.ts`` file's ``@classLabel`` order, or as
      documented in :mod:`.npz`); a model's output ``k`` means ``class_names[k]``.
    - ``name``: the problem's name (``@problemName``, else the file's stem).
    """

    sequences: tuple[np.ndarray, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.dtype != np.int64 or labels.shape != (len(self.sequences),):
            raise DataError(
                f"labels must be int64 of shape ({len(self.sequences)},), got {labels.dtype} of shape {labels.shape}"
            )
        if len(self.sequences) == 0:
            raise DataError(f"dataset {self.name!r} holds no sequences")
        if len(self.class_names) == 0 or len(set(self.class_names)) != len(self.class_names):
            raise DataError(f"class_names must be distinct and not empty, got {list(self.class_names)}")
        if labels.min() < 0 or labels.max() >= len(self.class_names):
            raise DataError(
                f"labels must be in [0, {len(self.class_names)}), got values in [{labels.min()}, {labels.max()}]"
            )
        width = self.sequences[0].shape[-1] if self.sequences[0].ndim == 2 else -1
        for i, s in enumerate(self.sequences):
            if (
                s.dtype not in (np.float32, np.uint8)
                or s.ndim != 2
                or s.shape[0] < 1
                or s.shape[1] != width
                or width < 1
            ):
                raise DataError(
                    f"sequence {i} must be float32 or uint8 of shape (T, {width}) with T >= 1, "
                    f"got {s.dtype} of shape {s.shape}"
                )
            if not np.isfinite(s).all():
                raise DataError(f"sequence {i} contains NaN or infinity")
            s.setflags(write=False)
        labels.setflags(write=False)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def lengths(self) -> np.ndarray:
        """int64 ``(N,)``: the number of steps of each case."""
        return np.array([s.shape[0] for s in self.sequences], dtype=np.int64)

    @property
    def num_channels(self) -> int:
        """``F``, the values per step (the model's input width)."""
        return int(self.sequences[0].shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def padded(self, pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Stack into ``x`` float32 ``(N, T_max, F)`` and ``lengths`` int64 ``(N,)``.

        Steps at or beyond ``lengths[i]`` hold ``pad_value``; they mean nothing, and a model must
        mask them (or use packed sequences) so that they change no output.
        """
        lengths = self.lengths
        x = np.full((len(self), int(lengths.max()), self.num_channels), pad_value, dtype=np.float32)  # (N, T, F)
        for i, s in enumerate(self.sequences):
            x[i, : s.shape[0]] = s
        return x, lengths

    def subset(self, indices: Sequence[int] | np.ndarray) -> SequenceDataset:
        """The cases at ``indices`` (in that order), with the same class names."""
        idx = np.asarray(indices, dtype=np.int64)
        return SequenceDataset(tuple(self.sequences[i] for i in idx), self.labels[idx], self.class_names, self.name)

    def normalized(self, stats: ChannelStats) -> SequenceDataset:
        """Every sequence normalised with ``stats`` (computed on the training split)."""
        return SequenceDataset(tuple(stats.apply(s) for s in self.sequences), self.labels, self.class_names, self.name)

    def class_counts(self) -> np.ndarray:
        """int64 ``(C,)``: cases per class."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ChannelStats:
    """Per-channel ``mean`` and ``std``, float32 ``(F,)``; ``apply`` maps ``x`` to ``(x - mean) / std``.

    A channel that is constant over the training split has ``std`` 1 (not 0), so it maps to 0
    rather than to infinity.
    """

    mean: np.ndarray
    std: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """float32 or uint8 ``(..., F)`` in, float32 ``(..., F)`` out."""
        if x.shape[-1:] != self.mean.shape:
            raise DataError(f"expected values with {self.mean.shape[0]} channels, got shape {x.shape}")
        out: np.ndarray = ((x - self.mean) / self.std).astype(np.float32)
        return out

    def to_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` as plain floats, for a checkpoint or the model's metadata."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> ChannelStats:
        mean = np.asarray(d["mean"], dtype=np.float32)
        std = np.asarray(d["std"], dtype=np.float32)
        if mean.ndim != 1 or mean.shape != std.shape or not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise DataError(f"channel statistics must be two finite lists of one length, got {d!r}")
        if (std <= 0).any():
            raise DataError(f"channel std must be > 0, got {std.tolist()}")
        return cls(mean, std)


def channel_stats(dataset: SequenceDataset, *, per_channel: bool = True) -> ChannelStats:
    """Mean and (population) std of each channel over every valid step of ``dataset`` — its training split.

    Computed in float64 over the unpadded sequences, so padding cannot count and long cases weigh
    in proportion to their steps. ``per_channel=False`` gives every channel the statistics of all
    values together (for channels of one kind, such as an image's pixels).
    """
    total = np.zeros(dataset.num_channels, dtype=np.float64)
    steps = 0
    for s in dataset.sequences:
        total += s.sum(axis=0, dtype=np.float64)
        steps += s.shape[0]
    if not per_channel:
        total, steps = np.full_like(total, total.sum()), steps * dataset.num_channels
    mean = total / steps
    squares = np.zeros(dataset.num_channels, dtype=np.float64)
    for s in dataset.sequences:
        squares += ((s.astype(np.float64) - mean) ** 2).sum(axis=0)
    if not per_channel:
        squares = np.full_like(squares, squares.sum())
    std = np.sqrt(squares / steps)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return ChannelStats(mean.astype(np.float32), std.astype(np.float32))


def split_validation(
    dataset: SequenceDataset, fraction: float, *, seed: int = 0
) -> tuple[SequenceDataset, SequenceDataset]:
    """Hold out about ``fraction`` of each class for validation: ``(train, valid)``.

    Stratified and deterministic: within each class the cases are shuffled by
    ``np.random.default_rng(seed)`` and ``round(fraction * n_c)`` of them (at most ``n_c - 1``, so
    every class keeps a training case) go to validation; both parts keep the file's order.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"valid_fraction must be a number in (0, 1), got {fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an int >= 0, got {seed!r}")
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in range(dataset.num_classes):
        members = np.flatnonzero(dataset.labels == c)
        k = min(math.floor(fraction * len(members) + 0.5), len(members) - 1)
        if k > 0:
            held.append(rng.permutation(members)[:k])
    valid = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    if len(valid) == 0:
        raise ConfigError(
            f"valid_fraction={fraction} of {len(dataset)} cases ({dataset.class_counts().tolist()} per class) "
            "leaves no validation case; give a larger fraction or a --valid file"
        )
    train = np.setdiff1d(np.arange(len(dataset)), valid)
    return dataset.subset(train), dataset.subset(valid)


def read_sequences(
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    max_line_bytes: int | None = None,
    max_bytes: int | None = None,
) -> SequenceDataset:
    """Read a ``.ts``, ``.npz`` or IDX image file of labelled sequences, chosen by the file's name.

    ``class_names``: the training split's classes, for a test or validation file: labels are mapped
    onto them (a label outside them is an error). ``max_line_bytes`` bounds a ``.ts`` file's lines,
    ``max_bytes`` an ``.npz`` file's arrays (each reader's default when ``None``; the other is ignored).
    """
    from .idx import is_idx_images, read_idx_sequences  # here: every reader imports this module

    p = Path(path)
    idx = is_idx_images(p)
    suffix = p.suffix.lower()
    if not idx and suffix not in SUFFIXES:
        raise DataError(
            f"{p}: cannot read sequences from a '{p.suffix}' file; expected one of {', '.join(SUFFIXES)}, "
            "or IDX images named NAME-images-idx3-ubyte[.gz]"
        )
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if not p.is_file():
        raise DataError(f"{p}: is not a file")
    if idx:
        return read_idx_sequences(p, class_names=class_names)
    if suffix == ".ts":
        from .ts import MAX_LINE_BYTES, read_ts  # here, as above

        return read_ts(
            p, class_names=class_names, max_line_bytes=MAX_LINE_BYTES if max_line_bytes is None else max_line_bytes
        )
    from .npz import MAX_BYTES, read_npz

    return read_npz(p, class_names=class_names, max_bytes=MAX_BYTES if max_bytes is None else max_bytes)
