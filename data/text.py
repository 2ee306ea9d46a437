"""How text becomes tokens: the one tokeniser that training, the runtime and docs/metadata.md share.

Two ways of splitting, named by the ``tokens`` field of a language model's metadata:

* ``"words"`` (PTB's, and every file without the field): the words of a line are what
  :meth:`str.split` gives (runs of whitespace separate them, empty words are dropped).
* ``"chars"``: every character (Unicode code point) of a line is a token, spaces and tabs
  included.

Either way lines are what :meth:`str.splitlines` gives (``\\n``, ``\\r\\n``, ``\\r``, ``\\v``,
``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028, U+2029), and the end of a line is the ``<eos>``
token: a file's every line, blank ones included, is closed by it (:func:`tokenize`). Text fed to
a stream (:func:`tokenize` with ``close_lines=False``) is split the same way, except that a word
stream ignores line breaks (they are whitespace, as PTB's next-word tools always did) and a
character stream turns each line break it meets into ``<eos>`` without adding one at the end.
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnedge.errors import DataError, RnnEdgeError

__all__ = ["TOKEN_MODES", "join_tokens", "read_text_file", "tokenize", "tokenize_lines"]

TOKEN_MODES = ("words", "chars")


def read_text_file(path: str | os.PathLike[str], error: type[RnnEdgeError] = DataError) -> str:
    """A file's text, decoded as UTF-8 (a leading byte-order mark dropped): training's and the runtime's reader.

    Bytes that are not UTF-8 are an ``error`` (:class:`DataError` for training, the runtime's
    ``InputError``) naming the line and column (1-based, the column counted in bytes) of the first
    bad byte; a file that cannot be read names the reason.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise error(f"cannot read text file {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise error(
            f"{path}, line {line}, column {column}: byte 0x{raw[e.start]:02x} is not UTF-8 ({e.reason}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def tokenize_lines(text: str, eos: str = "<eos>") -> list[str]:
    """PTB tokenisation: the words of every line, each line closed by ``eos`` (a blank line is just ``eos``).

    The one tokeniser of rnnedge: training reads the corpus with it too, as the reference does.
    """
    words: list[str] = []
    for line in text.splitlines():
        words.extend(line.split())
        words.append(eos)
    return words


def tokenize(text: str, tokens: str = "words", eos: str = "<eos>", *, close_lines: bool = True) -> list[str]:
    """``text`` as the tokens a model of the ``tokens`` mode reads (see the module docstring).

    ``close_lines=True`` (files: training corpora, perplexity): every line ends with ``eos``.
    ``close_lines=False`` (what a stream is fed): words ignore line breaks; characters turn each
    line break into ``eos`` and add none at the end.
    """
    if tokens == "words":
        return tokenize_lines(text, eos) if close_lines else text.split()
    if tokens != "chars":
        raise ValueError(f"tokens must be one of {TOKEN_MODES}, got {tokens!r}")
    out: list[str] = []
    if close_lines:
        for line in text.splitlines():
            out.extend(line)
            out.append(eos)
        return out
    for piece in text.splitlines(keepends=True):
        line = piece.splitlines()[0] if piece.splitlines() else ""
        out.extend(line)
        if len(line) < len(piece):  # the piece ended with a line break
            out.append(eos)
    return out


def join_tokens(tokens: list[str], mode: str = "words", eos: str = "<eos>") -> str:
    """Tokens back to text: words joined by spaces, characters joined as they are; ``eos`` is a line break."""
    sep = " " if mode == "words" else ""
    lines: list[list[str]] = [[]]
    for token in tokens:
        if token == eos:
            lines.append([])
        else:
            lines[-1].append(token)
    return "\n".join(sep.join(line) for line in lines)
