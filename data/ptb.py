"""Mikolov's preprocessed Penn Treebank, read and batched with numpy alone (no torch).

Kept torch-free so the runtime's command line can tokenise PTB files too. Tokens are
the words of each line followed by ``<eos>`` (the TF reference's ``_read_words``);
the vocabulary is the 10,000 word types of the training file ordered by frequency,
ties by word, so the same files always give the same ids.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnedge.errors import ConfigError, DataError

from .datasets import PTB_FILES, ensure_files, md5_of
from .text import read_text_file, tokenize_lines

__all__ = [
    "EOS",
    "PTB_TOKEN_COUNTS",
    "PTB_VOCAB_SIZE",
    "UNK",
    "PTBCorpus",
    "batchify",
    "build_vocabulary",
    "load_ptb",
    "num_windows",
    "read_words",
    "windows",
]

EOS = "<eos>"
UNK = "<unk>"
PTB_TOKEN_COUNTS = {"train": 929_589, "valid": 73_760, "test": 82_430}
PTB_VOCAB_SIZE = 10_000


def read_words(lines: Iterable[str]) -> list[str]:
    """The words of every line, each line closed by ``<eos>`` (the runtime's tokeniser, so both agree)."""
    words: list[str] = tokenize_lines("\n".join(line.rstrip("\r\n") for line in lines), EOS)
    return words


def build_vocabulary(words: Iterable[str], max_size: int | None = None, *, min_count: int = 1) -> tuple[str, ...]:
    """Word types by frequency (descending), ties by word; ``<unk>``/``<eos>`` always included.

    ``max_size`` counts the two special tokens; types seen fewer than ``min_count`` times are left out.
    """
    counts = Counter(words)
    if min_count > 1:
        counts = Counter({w: n for w, n in counts.items() if n >= min_count or w in (UNK, EOS)})
    for special in (UNK, EOS):
        counts.setdefault(special, 0)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab = [w for w, _ in ordered]
    if max_size is not None and len(vocab) > max_size:
        others = [w for w in vocab if w not in (UNK, EOS)][: max_size - 2]  # never cut the special tokens
        keep = {*others, UNK, EOS}
        vocab = [w for w in vocab if w in keep]
    return tuple(vocab)


@dataclass(frozen=True)
class PTBCorpus:
    """int64 token ids ``(N,)`` of each split and the vocabulary they index (any word corpus, PTB's first).

    ``files``: the absolute paths of the train, valid and test files read, for the checkpoint.
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocabulary: tuple[str, ...]
    files: tuple[str, ...] = ()

    @property
    def unk_id(self) -> int:
        """Id of ``<unk>``."""
        return self.vocabulary.index(UNK)

    @property
    def eos_id(self) -> int:
        """Id of ``<eos>``."""
        return self.vocabulary.index(EOS)

    def encode(self, words: Sequence[str]) -> np.ndarray:
        """Tokens -> int64 ids ``(N,)``, unknown ones as ``<unk>``."""
        index = {w: i for i, w in enumerate(self.vocabulary)}
        unk = index[UNK]
        return np.fromiter((index.get(w, unk) for w in words), dtype=np.int64, count=len(words))


def _read_split(path: Path, split: str, md5: str, custom: bool) -> list[str]:
    if not custom and (got := md5_of(path)) != md5:
        raise DataError(
            f"PTB file {path} has MD5 {got}, expected the published {md5}; "
            "the file is corrupt or not Mikolov's PTB (pass custom=True / --custom for your own corpus)"
        )
    words = read_words(read_text_file(path).splitlines())
    want = PTB_TOKEN_COUNTS[split]
    if not custom and len(words) != want:
        raise DataError(
            f"PTB file {path} holds {len(words)} tokens, expected {want}; pass custom=True for another corpus"
        )
    if len(words) < 2:
        raise DataError(f"{path} holds {len(words)} tokens; a language model needs at least 2")
    return words


def load_ptb(data: str | os.PathLike[str] | None = None, *, custom: bool = False) -> PTBCorpus:
    """Read ``ptb.{train,valid,test}.txt`` from the data folder, checked against the published corpus.

    ``custom=True`` accepts other files of the same names (no MD5 or count check; the
    vocabulary is then every type of the training file).
    """
    folder = ensure_files("ptb", PTB_FILES, data)
    splits = {}
    for file, split in zip(PTB_FILES, ("train", "valid", "test"), strict=True):
        splits[split] = _read_split(folder / file.name, split, file.md5, custom)
    vocab = build_vocabulary(splits["train"], None if custom else PTB_VOCAB_SIZE)
    if not custom and len(vocab) != PTB_VOCAB_SIZE:
        raise DataError(f"PTB training file has {len(vocab)} word types, expected {PTB_VOCAB_SIZE}")
    probe = PTBCorpus(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), vocab)
    train, valid, test = (probe.encode(splits[s]) for s in ("train", "valid", "test"))
    files = tuple(str((folder / f.name).resolve()) for f in PTB_FILES)
    return PTBCorpus(train, valid, test, vocab, files)


def batchify(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Split the token stream ``(N,)`` into ``batch_size`` contiguous rows ``(batch_size, N // batch_size)``.

    As the TF reference's ``ptb_iterator``: the tail that does not fill a row is dropped.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}")
    row_len = len(ids) // batch_size
    if row_len < 2:
        raise DataError(f"{len(ids)} tokens cannot fill {batch_size} rows of at least 2 tokens")
    return np.ascontiguousarray(ids[: batch_size * row_len].reshape(batch_size, row_len))  # (B, L)


def num_windows(rows: np.ndarray, num_steps: int) -> int:
    """Windows per epoch, as the reference: ``(L - 1) // num_steps`` (the targets need one token more)."""
    return int((rows.shape[1] - 1) // num_steps)


def windows(rows: np.ndarray, num_steps: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Inputs and targets ``(B, num_steps)`` of each window from ``start``; targets are inputs shifted by one."""
    for i in range(start, num_windows(rows, num_steps)):
        lo = i * num_steps
        yield rows[:, lo : lo + num_steps], rows[:, lo + 1 : lo + num_steps + 1]
