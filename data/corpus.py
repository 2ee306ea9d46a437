"""Any UTF-8 text as a language-model corpus: three files, their tokens, a vocabulary, ids (numpy only).

The files are split by :func:`rnnedge.data.text.tokenize` (words or characters, every line
closed by ``<eos>``); the vocabulary comes from the training file alone, by the PTB rule:
tokens by frequency (descending), ties by the token, ``<unk>`` and ``<eos>`` always kept,
cut to ``max_vocab`` entries and to tokens seen at least ``min_count`` times. Tokens of the
validation and test files outside it read as ``<unk>``. Penn Treebank is this with
``max_vocab=10000`` (:func:`rnnedge.data.ptb.load_ptb` adds its checksums).

Bad files are :class:`~rnnedge.errors.DataError` naming the file, and the line and column
where one is to blame (bytes that are not UTF-8); impossible settings are
:class:`~rnnedge.errors.ConfigError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnedge.errors import ConfigError, DataError

from .atomic import atomic_output
from .ptb import EOS, PTBCorpus, build_vocabulary
from .text import TOKEN_MODES, read_text_file, tokenize

__all__ = [
    "CORPUS_FILES",
    "TextCorpus",
    "corpus_files",
    "load_text_corpus",
    "read_text_file",
    "split_text_file",
    "write_corpus_files",
]

CORPUS_FILES = ("train.txt", "valid.txt", "test.txt")
MIN_VOCAB = 3  # <unk>, <eos> and one token of the text


@dataclass(frozen=True)
class TextCorpus(PTBCorpus):
    """A corpus of a user's text: PTB's ids and vocabulary, plus how text was split and where it came from.

    ``split`` records how one file was cut into the three (``--split``): the file, the fractions and
    each part's line count; ``None`` for three files given.
    """

    tokens: str = "words"
    split: dict[str, Any] | None = None


def _tokens_of(path: Path, tokens: str) -> list[str]:
    text = read_text_file(path)
    out = tokenize(text, tokens, EOS)
    if not any(t != EOS for t in out):
        what = "no text" if not text else f"{len(text.splitlines())} line(s) and no {tokens[:-1]}"
        raise DataError(f"{path} holds {what}; a language model needs text to read")
    return out


def corpus_files(folder: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """``train.txt``, ``valid.txt``, ``test.txt`` of ``folder``; a :class:`DataError` names the missing ones."""
    root = Path(folder)
    paths = tuple(root / name for name in CORPUS_FILES)
    missing = [p.name for p in paths if not p.is_file()]
    if len(missing) == len(CORPUS_FILES):
        raise DataError(
            f"corpus folder {root} holds none of {', '.join(CORPUS_FILES)}; put the three texts there, or split one "
            "file with --train FILE --split 0.8,0.1,0.1"
        )
    if missing:
        present = [p.name for p in paths if p.is_file()]
        raise DataError(f"corpus folder {root} lacks {', '.join(missing)} (it holds {', '.join(present)})")
    return paths  # type: ignore[return-value]


def split_text_file(path: str | os.PathLike[str], fractions: Sequence[float]) -> tuple[str, str, str]:
    """The text of ``path`` cut by lines into train, valid and test parts, in the file's order.

    ``fractions`` (three numbers > 0 summing to 1, e.g. ``(0.8, 0.1, 0.1)``) give each part's share
    of the lines: the first ``round(n * train)`` lines are the training text, the next
    ``round(n * valid)`` the validation text, the rest the test text. Consecutive blocks, as PTB's
    are, so no sentence of the test text sits between training sentences; the same file always
    gives the same parts. Each part must hold a line: a :class:`ConfigError` says so otherwise.
    """
    shares = tuple(float(f) for f in fractions)
    if len(shares) != 3 or not all(math.isfinite(f) and f > 0 for f in shares) or abs(sum(shares) - 1) > 1e-6:
        raise ConfigError(
            f"the split must be three fractions > 0 that sum to 1 (train, valid, test: 0.8,0.1,0.1), got {list(shares)}"
        )
    lines = read_text_file(Path(path)).splitlines(keepends=True)
    a = round(len(lines) * shares[0])
    b = a + round(len(lines) * shares[1])
    parts = (lines[:a], lines[a:b], lines[b:])
    empty = [name for name, part in zip(("train", "valid", "test"), parts, strict=True) if not part]
    if empty:
        raise ConfigError(
            f"splitting the {len(lines)} line(s) of {path} by {','.join(f'{f:g}' for f in shares)} leaves no line "
            f"for {' and '.join(empty)}; give a longer file or larger fractions"
        )
    return "".join(parts[0]), "".join(parts[1]), "".join(parts[2])


def write_corpus_files(
    texts: Sequence[str], folder: str | os.PathLike[str], *, replace: bool = False
) -> tuple[Path, Path, Path]:
    """Write ``texts`` (train, valid, test) as ``folder``'s ``train.txt``, ``valid.txt``, ``test.txt`` (UTF-8).

    A file already there that holds other text is replaced only with ``replace``; otherwise it is a
    :class:`ConfigError` and nothing is written. Each file is written atomically.
    """
    paths = tuple(Path(folder) / name for name in CORPUS_FILES)
    data = [t.encode("utf-8") for t in texts]
    differ = [p for p, d in zip(paths, data, strict=True) if p.exists() and (not p.is_file() or p.read_bytes() != d)]
    if differ and not replace:
        raise ConfigError(
            f"{', '.join(map(str, differ))} already hold(s) other text (an earlier split); --overwrite replaces it"
        )
    for path, d in zip(paths, data, strict=True):
        if path.is_file() and path.read_bytes() == d:
            continue
        with atomic_output(path) as tmp:
            tmp.write_bytes(d)
    return paths  # type: ignore[return-value]


def load_text_corpus(
    train: str | os.PathLike[str],
    valid: str | os.PathLike[str],
    test: str | os.PathLike[str],
    *,
    tokens: str = "words",
    max_vocab: int | None = None,
    min_count: int = 1,
) -> TextCorpus:
    """Read three UTF-8 files as a corpus of ``tokens`` (``"words"`` or ``"chars"``).

    ``max_vocab`` counts ``<unk>`` and ``<eos>`` (at least 3); ``min_count`` drops tokens seen
    fewer times in the training file (they read as ``<unk>``).
    """
    if tokens not in TOKEN_MODES:
        raise ConfigError(f"tokens must be one of {TOKEN_MODES}, got {tokens!r}")
    if max_vocab is not None and (
        isinstance(max_vocab, bool) or not isinstance(max_vocab, int) or max_vocab < MIN_VOCAB
    ):
        raise ConfigError(
            f"max_vocab must be an int >= {MIN_VOCAB} (<unk>, <eos> and at least one token of the text), "
            f"got {max_vocab!r}"
        )
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ConfigError(f"min_count must be an int >= 1, got {min_count!r}")
    paths = [Path(p) for p in (train, valid, test)]
    splits = [_tokens_of(p, tokens) for p in paths]
    vocab = build_vocabulary(splits[0], max_vocab, min_count=min_count)
    if len(vocab) < MIN_VOCAB:
        raise DataError(
            f"{paths[0]}: no {tokens[:-1]} is seen {min_count} time(s) or more; the vocabulary would hold only "
            "<unk> and <eos> (lower --min-count)"
        )
    probe = TextCorpus(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), vocab, tokens=tokens)
    ids = [probe.encode(s) for s in splits]
    return TextCorpus(ids[0], ids[1], ids[2], vocab, files=tuple(str(p.resolve()) for p in paths), tokens=tokens)
