"""The PTB reader on the real files: counts, vocabulary, batching as the TF reference, wrong corpora refused."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from rnnedge.data.ptb import (
    EOS,
    PTB_TOKEN_COUNTS,
    UNK,
    batchify,
    build_vocabulary,
    load_ptb,
    num_windows,
    read_words,
    windows,
)
from rnnedge.errors import DataError


@pytest.fixture(scope="module")
def corpus(ptb_data: Path):
    return load_ptb(ptb_data)


def test_counts_and_vocabulary(corpus) -> None:
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == tuple(PTB_TOKEN_COUNTS.values())
    assert len(corpus.vocabulary) == len(set(corpus.vocabulary)) == 10_000
    assert UNK in corpus.vocabulary and EOS in corpus.vocabulary
    assert corpus.vocabulary[:3] == ("the", UNK, EOS)  # by frequency
    for ids in (corpus.train, corpus.valid, corpus.test):
        assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 10_000
    assert corpus.train[-1] == corpus.eos_id


def test_vocabulary_is_deterministic(corpus, ptb_data: Path) -> None:
    assert load_ptb(ptb_data).vocabulary == corpus.vocabulary
    words = [corpus.vocabulary[i] for i in corpus.train[:20_000]]
    shuffled = words[:]
    random.Random(0).shuffle(shuffled)
    assert build_vocabulary(shuffled) == build_vocabulary(words)
    # Ties are broken by the word itself; the special tokens are always there.
    assert build_vocabulary(["b", "a", "c", "a"]) == ("a", "b", "c", EOS, UNK)
    assert build_vocabulary(["b", "a", "c", "a"], max_size=3) == ("a", EOS, UNK)


def test_read_words_closes_lines_with_eos() -> None:
    assert read_words([" a b \n", "c"]) == ["a", "b", EOS, "c", EOS]


def _tf_ptb_iterator(raw: np.ndarray, batch_size: int, num_steps: int):
    """The TF reference's ptb_iterator, verbatim in numpy."""
    batch_len = len(raw) // batch_size
    data = np.zeros([batch_size, batch_len], dtype=np.int64)
    for i in range(batch_size):
        data[i] = raw[batch_len * i : batch_len * (i + 1)]
    for i in range((batch_len - 1) // num_steps):
        yield data[:, i * num_steps : (i + 1) * num_steps], data[:, i * num_steps + 1 : (i + 1) * num_steps + 1]


def test_batchify_matches_the_reference_iterator(corpus) -> None:
    ids = corpus.valid
    rows = batchify(ids, 20)
    assert rows.shape == (20, len(ids) // 20)
    assert num_windows(rows, 35) == (len(ids) // 20 - 1) // 35
    ours = list(windows(rows, 35))
    ref = list(_tf_ptb_iterator(ids, 20, 35))
    assert len(ours) == len(ref)
    for (x, y), (rx, ry) in zip(ours, ref, strict=True):
        assert x.shape == y.shape == (20, 35)
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(y, ry)
    assert next(iter(windows(rows, 35, start=3)))[0].tolist() == ours[3][0].tolist()


def test_targets_are_inputs_shifted_by_one() -> None:
    rows = batchify(np.arange(103, dtype=np.int64), 4)  # 3 tokens dropped, rows of 25
    assert rows.shape == (4, 25) and rows[1, 0] == 25
    for x, y in windows(rows, 5):
        np.testing.assert_array_equal(y, x + 1)
    assert num_windows(rows, 5) == 4
    with pytest.raises(DataError):
        batchify(np.arange(3, dtype=np.int64), 2)


def _write_corpus(root: Path, text: str) -> Path:
    (root / "ptb").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (root / "ptb" / f"ptb.{split}.txt").write_text(text)
    return root


def test_a_different_corpus_is_refused_unless_custom(tmp_path: Path) -> None:
    root = _write_corpus(tmp_path, " the cat sat \n the dog ran \n")
    with pytest.raises(DataError, match="MD5"):
        load_ptb(root)
    custom = load_ptb(root, custom=True)
    assert set(custom.vocabulary) == {"the", "cat", "sat", "dog", "ran", EOS, UNK}
    assert len(custom.train) == 8


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ptb\.train\.txt"):
        load_ptb(tmp_path)


def test_training_and_runtime_tokenise_alike() -> None:
    from rnnedge.data.text import tokenize_lines

    text = " a b \n\n c \n"
    assert read_words(text.splitlines()) == tokenize_lines(text) == ["a", "b", EOS, EOS, "c", EOS]
