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

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnedge.errors import ConfigError, DataError

from .ptb import EOS, PTBCorpus, build_vocabulary
from .text import TOKEN_MODES, read_text_file, tokenize

__all__ = ["CORPUS_FILES", "TextCorpus", "corpus_files", "load_text_corpus", "read_text_file"]

CORPUS_FILES = ("train.txt", "valid.txt", "test.txt")
MIN_VOCAB = 3  # <unk>, <eos> and one token of the text


@dataclass(frozen=True)
class TextCorpus(PTBCorpus):
    """A corpus of a user's text: PTB's ids and vocabulary, plus how text was split and where it came from."""

    tokens: str = "words"


def _tokens_of(path: Path, tokens: str) -> list[str]:
    text = read_text_file(path)
    out = tokenize(text, tokens, EOS)
    if not any(t != EOS for t in out):
        what = "no text" if not text else f"{len(text.splitlines())} line(s) and no {tokens[:-1]}"
        raise DataError(f"{path} holds {what}; a language model needs text to read")
    return out


def corpus_files(folder: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """``train.txt``, ``valid.txt``, ``test.txt`` of ``folder``; a :class:`DataError` lists the missing ones."""
    root = Path(folder)
    paths = tuple(root / name for name in CORPUS_FILES)
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"corpus folder {root} lacks {', '.join(missing)} (it must hold {', '.join(CORPUS_FILES)})")
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
