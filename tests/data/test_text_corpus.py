"""Any text as a language-model corpus: the one tokeniser (words and characters), the vocabulary rule,
and bad files (docs/bad_input.md) as typed errors naming the file, the line and the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnedge.data.corpus import corpus_files, load_text_corpus
from rnnedge.data.ptb import EOS, UNK
from rnnedge.data.text import join_tokens, tokenize
from rnnedge.errors import ConfigError, DataError


def test_words_and_characters_split_as_documented() -> None:
    text = "Ça va,\tbien?\r\n\nno  end"
    assert tokenize(text, "words") == ["Ça", "va,", "bien?", EOS, EOS, "no", "end", EOS]
    assert tokenize(text, "words", close_lines=False) == ["Ça", "va,", "bien?", "no", "end"]
    chars = tokenize(text, "chars")
    assert chars == [*"Ça va,\tbien?", EOS, EOS, *"no  end", EOS]  # \r\n is one line end; blank line kept
    assert tokenize(text, "chars", close_lines=False) == [*"Ça va,\tbien?", EOS, EOS, *"no  end"]
    assert tokenize("a\u2028b\rc", "chars") == ["a", EOS, "b", EOS, "c", EOS]  # every str.splitlines break
    assert join_tokens(chars, "chars") == "Ça va,\tbien?\n\nno  end\n"
    assert join_tokens(["the", "cat", EOS, "sat"], "words") == "the cat\nsat"
    with pytest.raises(ValueError, match="tokens must be one of"):
        tokenize("a", "bytes")


def _files(root: Path, train: str, valid: str = "b a\n", test: str = "a c\n") -> tuple[Path, Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in zip(("train.txt", "valid.txt", "test.txt"), (train, valid, test), strict=True):
        (root / name).write_text(text, encoding="utf-8", newline="")
    return corpus_files(root)


def test_the_vocabulary_follows_the_ptb_rule(tmp_path: Path) -> None:
    paths = _files(tmp_path, "b a c a\nc a d\n")  # a:3, c:2, b:1, d:1, <eos>:2
    corpus = load_text_corpus(*paths)
    assert corpus.vocabulary == ("a", EOS, "c", "b", "d", UNK)  # frequency, then the token; <unk> unseen
    assert load_text_corpus(*paths, max_vocab=4).vocabulary == ("a", EOS, "c", UNK)  # specials never cut
    assert load_text_corpus(*paths, min_count=2).vocabulary == ("a", EOS, "c", UNK)
    assert corpus.encode(["a", "zz"]).tolist() == [0, corpus.unk_id]
    chars = load_text_corpus(*paths, tokens="chars")
    assert (
        chars.tokens == "chars"
        and " " in chars.vocabulary
        and len(chars.train) == len("b a c a") + 1 + len("c a d") + 1
    )


def test_ptb_lines_read_the_same_through_the_general_reader(ptb_data: Path, tmp_path: Path) -> None:
    from rnnedge.data.ptb import build_vocabulary, read_words

    lines = (ptb_data / "ptb" / "ptb.train.txt").read_text(encoding="utf-8").splitlines(keepends=True)[:300]
    paths = _files(tmp_path, "".join(lines))
    corpus = load_text_corpus(*paths, max_vocab=500)
    assert corpus.vocabulary == build_vocabulary(read_words(lines), 500)
    assert len(corpus.train) == len(read_words(lines))


def test_a_file_that_is_not_utf8_names_its_line_and_column(tmp_path: Path) -> None:
    paths = _files(tmp_path, "fine\n")
    paths[1].write_bytes(b"one line\ncaf\xe9 au lait\n")
    with pytest.raises(DataError, match=r"valid.txt, line 2, column 4: byte 0xe9 is not UTF-8"):
        load_text_corpus(*paths)


def test_empty_files_and_blank_files_are_refused(tmp_path: Path) -> None:
    paths = _files(tmp_path, "")
    with pytest.raises(DataError, match=r"train.txt holds no text"):
        load_text_corpus(*paths)
    paths = _files(tmp_path, "a b\n", test=" \n\t\n")
    with pytest.raises(DataError, match=r"test.txt holds 2 line\(s\) and no word"):
        load_text_corpus(*paths)
    assert len(load_text_corpus(*paths, tokens="chars").test) == 4  # blanks are characters


def test_a_vocabulary_that_cannot_hold_unk_and_eos_is_refused(tmp_path: Path) -> None:
    paths = _files(tmp_path, "a b\n")
    with pytest.raises(ConfigError, match=r"max_vocab must be an int >= 3 \(<unk>, <eos> and at least one"):
        load_text_corpus(*paths, max_vocab=2)
    with pytest.raises(DataError, match=r"train.txt: no word is seen 5 time\(s\) or more"):
        load_text_corpus(*paths, min_count=5)
    with pytest.raises(ConfigError, match="tokens must be one of"):
        load_text_corpus(*paths, tokens="bytes")
    with pytest.raises(DataError, match=r"nothing holds none of train.txt, valid.txt, test.txt; put the three"):
        corpus_files(tmp_path / "nothing")


def test_penn_treebank_read_as_any_text_gives_its_10000_words_and_ids(ptb_data: Path) -> None:
    from rnnedge.data.ptb import load_ptb

    ptb = load_ptb(ptb_data)
    folder = ptb_data / "ptb"
    text = load_text_corpus(*(folder / f"ptb.{s}.txt" for s in ("train", "valid", "test")), max_vocab=10_000)
    assert text.vocabulary == ptb.vocabulary and len(text.vocabulary) == 10_000
    for split in ("train", "valid", "test"):
        assert np.array_equal(getattr(text, split), getattr(ptb, split))
