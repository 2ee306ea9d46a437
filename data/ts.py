"""The UEA/UCR time-series archive's ``.ts`` text format, read with numpy alone (no pandas, no sktime).

A file is ``#`` comment lines and ``@key value`` header lines (keys case-insensitive), then ``@data``
and one case per line::

    @problemName JapaneseVowels
    @univariate false
    @dimensions 12
    @equalLength false
    @classLabel true 1 2 3 4 5 6 7 8 9
    @data
    1.86,1.89,1.93:-0.20,-0.19,-0.23: ... :1

Channels are separated by ``:``, the values of a channel by ``,``, and the class label comes last.
Known keys: ``@problemName``, ``@timeStamps``, ``@missing``, ``@univariate``, ``@dimensions``,
``@equalLength``, ``@seriesLength``, ``@classLabel``, ``@targetLabel``, ``@data``; any other key is
refused, so a typo cannot silently change how the file is read.

What we decided, for a classifier that must never see a made-up value:

- **Missing values** (``?`` or ``NaN``, any case) at the *end* of a channel are padding — the archive
  pads shorter series this way — and are dropped. A missing value with a real value after it (a gap,
  or a leading ``?``) is refused with its line and column: a recurrent classifier cannot take NaN,
  and filling gaps is a modelling choice the user should make, not the reader. ``@missing`` is read
  but changes nothing: the same rule holds whatever it says.
- **Channels of one case** must have one length after that padding is dropped; otherwise the case is
  refused (naming the channel and both lengths) rather than truncated or padded in silence.
- **Lengths.** With ``@equalLength true`` every channel of every case must hold the same number of
  values as written (padding included), ``@seriesLength`` of them when that key is given;
  without it, ``@seriesLength`` is read and not checked.
- **Labels.** ``@classLabel true`` and its list are required; a case's label must be in the list, and
  label ids follow the list's order (``class_names`` is the list as written). ``@classLabel false``
  (unlabelled) and ``@targetLabel true`` (regression) are refused, as is ``@timeStamps true``
  (``(time,value)`` pairs: irregular sampling a step-per-row model cannot take as it stands).
- **Values** are decimal numbers (``-1.5``, ``.5``, ``2e-3``); ``inf``, hex, underscores and values
  beyond float32's range are refused. Sequences come out as float32 ``(T_i, F)``.
- **Bounded memory.** The file is read a line at a time; a line longer than ``max_line_bytes``
  (16 MiB by default: room for about two million values in one case) is refused before it is held.
  NUL bytes and text that is not UTF-8 are refused with their position.

Every malformed spot raises :class:`~rnnedge.data.sequences.SequenceFileError` (a ``DataError``)
whose message starts ``path:line:column:`` (1-based).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rnnedge.errors import ConfigError

from .sequences import SequenceDataset, SequenceFileError

__all__ = ["MAX_LINE_BYTES", "read_ts"]

MAX_LINE_BYTES = 16 << 20

_BOOL_KEYS = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
_INT_KEYS = ("dimensions", "serieslength")
_KNOWN_KEYS = ("problemname", *_BOOL_KEYS, *_INT_KEYS, "classlabel", "data")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_MISSING = r"[+-]?(?:\?|(?i:nan))"
_TOKEN = re.compile(rf"[ \t]*(?:{_NUMBER}|{_MISSING})[ \t]*")
# The fast path: a channel made of these characters that float() parses (after ? -> nan) is exactly
# a list of _TOKEN matches; anything else goes the slow way, token by token, to say where it breaks.
_CHARACTERS = re.compile(r"[0-9eE.+\-?NnAa, \t]*")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _lines(path: Path, f: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text without its line ending)``, refusing long, binary or non-UTF-8 lines."""
    number = 0
    while raw := f.readline(max_line_bytes + 2):  # + 2: room for "\r\n" after a line at the limit
        number += 1
        body = raw[:-1] if raw.endswith(b"\n") else raw
        body = body[:-1] if body.endswith(b"\r") else body
        if len(body) > max_line_bytes:
            raise SequenceFileError(
                path,
                f"line is longer than {max_line_bytes} bytes (max_line_bytes); refused before reading it whole",
                line=number,
                column=1,
            )
        if number == 1 and body.startswith(b"\xef\xbb\xbf"):
            body = body[3:]
        if (nul := body.find(b"\0")) >= 0:
            column = len(body[:nul].decode("utf-8", "replace")) + 1
            raise SequenceFileError(path, "NUL byte: binary data, not a .ts text file", line=number, column=column)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            column = len(body[: e.start].decode("utf-8", "replace")) + 1
            raise SequenceFileError(
                path, f"byte {body[e.start : e.start + 1]!r} is not UTF-8 text", line=number, column=column
            ) from None
        yield number, text


class _Header:
    """The ``@`` lines before ``@data``: each key's value and the line it came from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[str, int] = {}
        self.name: str | None = None
        self.flags: dict[str, bool] = {}
        self.ints: dict[str, int] = {}
        self.labels: list[str] | None = None

    def error(self, key: str, message: str) -> SequenceFileError:
        return SequenceFileError(self.path, message, line=self.lines[key], column=1)

    def read(self, number: int, text: str) -> bool:
        """Take one ``@`` line; return True at ``@data``."""
        at = text.index("@")
        parts = text[at + 1 :].split(None, 1)
        spelled = parts[0] if parts else ""
        key = spelled.lower()
        value = parts[1].strip() if len(parts) > 1 else ""
        value_column = text.index(value, at + 1 + len(spelled)) + 1 if value else len(text.rstrip()) + 1
        if key not in _KNOWN_KEYS:
            raise SequenceFileError(
                self.path,
                f"unknown header key '@{spelled}'; known: {', '.join('@' + k for k in _KNOWN_KEYS)} (any case)",
                line=number,
                column=at + 1,
            )
        if key in self.lines:
            raise SequenceFileError(
                self.path, f"'@{spelled}' repeats (first at line {self.lines[key]})", line=number, column=at + 1
            )
        self.lines[key] = number

        def bad(what: str) -> SequenceFileError:
            return SequenceFileError(self.path, f"@{spelled} {what}, got {value!r}", line=number, column=value_column)

        if key == "data":
            if value:
                raise bad("takes no value; the cases start on the next line")
            return True
        if key == "problemname":
            if not value:
                raise bad("needs a name")
            self.name = value
        elif key in _BOOL_KEYS:
            if value.lower() not in ("true", "false"):
                raise bad("expects true or false")
            self.flags[key] = value.lower() == "true"
        elif key in _INT_KEYS:
            if not value.isascii() or not value.isdigit() or int(value) < 1:
                raise bad("expects a whole number >= 1")
            self.ints[key] = int(value)
        else:  # classlabel
            words = value.split()
            if not words or words[0].lower() not in ("true", "false"):
                raise bad("expects true followed by the class labels, or false")
            if words[0].lower() == "false":
                raise bad("says the cases are unlabelled; a classifier needs labelled cases")
            if len(words) < 2:
                raise bad("lists no class labels after true")
            seen: set[str] = set()
            for word in words[1:]:
                if word in seen:
                    raise bad(f"lists the label {word!r} twice")
                seen.add(word)
            self.labels = words[1:]
        return False

    def check(self, data_line: int) -> None:
        """What ``@data`` needs before it: labels, no timestamps, no regression, consistent dimensions."""
        if self.flags.get("timestamps"):
            raise self.error(
                "timestamps", "@timeStamps true ((time,value) pairs) is not supported; write values at regular steps"
            )
        if self.flags.get("targetlabel"):
            raise self.error("targetlabel", "@targetLabel true is a regression problem; rnnedge reads class labels")
        if self.labels is None:
            raise SequenceFileError(
                self.path, "no '@classLabel true <labels>' line before @data", line=data_line, column=1
            )
        dims = self.ints.get("dimensions")
        if self.flags.get("univariate") and dims is not None and dims != 1:
            raise self.error("dimensions", f"@dimensions {dims} contradicts @univariate true")

    @property
    def channels(self) -> int | None:
        if "dimensions" in self.ints:
            return self.ints["dimensions"]
        return 1 if self.flags.get("univariate") else None


def _token_column(field: str, start: int, index: int) -> int:
    """1-based column of the ``index``-th comma-separated value of ``field`` (which starts at ``start``)."""
    tokens = field.split(",")
    offset = start + sum(len(t) + 1 for t in tokens[:index])
    token = tokens[index]
    return offset + len(token) - len(token.lstrip()) + 1


class _Reader:
    def __init__(self, path: Path, header: _Header, class_names: Sequence[str] | None) -> None:
        self.path = path
        self.header = header
        assert header.labels is not None  # checked by _Header.check
        self.file_labels = set(header.labels)
        self.names = tuple(header.labels) if class_names is None else tuple(class_names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.channels = header.channels
        self.channels_from = "@dimensions" if "dimensions" in header.ints else "@univariate true"
        self.width: int | None = header.ints.get("serieslength") if header.flags.get("equallength") else None
        self.width_from = f"@seriesLength {self.width}"
        self.sequences: list[np.ndarray] = []
        self.labels: list[int] = []

    def error(self, number: int, column: int, message: str) -> SequenceFileError:
        return SequenceFileError(self.path, message, line=number, column=column)

    def case(self, number: int, text: str) -> None:
        fields = text.split(":")
        starts = [0]
        for f in fields[:-1]:
            starts.append(starts[-1] + len(f) + 1)
        if len(fields) < 2:
            raise self.error(
                number,
                len(text.rstrip()) + 1,
                "the class label is missing: expected the channels, ':' and the label; found no ':'",
            )
        count = len(fields) - 1
        if self.channels is None:
            self.channels, self.channels_from = count, f"line {number}"
        last = fields[-1].strip()
        if count == self.channels - 1 and last not in self.file_labels and all(map(_TOKEN.fullmatch, last.split(","))):
            raise self.error(  # the last field holds numbers: the channels are all there, the label is not
                number,
                len(text.rstrip()) + 1,
                f"the class label is missing: the case ends with {self.channels} channel(s) of values (from "
                f"{self.channels_from}); add ':' and a label of @classLabel {_shown(self.header.labels or [])}",
            )
        if count != self.channels:
            column = starts[self.channels] + 1 if count > self.channels else starts[-1] + 1
            raise self.error(
                number, column, f"case has {count} channel(s), expected {self.channels} (from {self.channels_from})"
            )
        label_column = starts[-1] + len(fields[-1]) - len(fields[-1].lstrip()) + 1
        label = fields[-1].strip()
        if not label:
            raise self.error(number, starts[-1] + 1, "no class label after the last ':'")
        if label not in self.file_labels:
            raise self.error(
                number, label_column, f"class label {label!r} is not in @classLabel {_shown(self.header.labels or [])}"
            )
        if label not in self.index:
            raise self.error(
                number, label_column, f"class label {label!r} is not among the given class_names {_shown(self.names)}"
            )
        values = [self.channel(number, fields[c], starts[c], c) for c in range(count)]
        length = len(values[0])
        for c, v in enumerate(values[1:], start=1):
            if len(v) != length:
                raise self.error(
                    number,
                    starts[c] + 1,
                    f"channel {c + 1} holds {len(v)} values, channel 1 holds {length}; every channel of a case "
                    "must have one length (after trailing missing values are dropped)",
                )
        self.sequences.append(np.stack(values, axis=1).astype(np.float32))  # (T, F)
        self.labels.append(self.index[label])

    def channel(self, number: int, field: str, start: int, c: int) -> np.ndarray:
        """One channel's values, float64 ``(T,)``, trailing missing values dropped."""
        values = None
        if _CHARACTERS.fullmatch(field):
            tokens = field.replace("?", "nan").split(",")
            try:
                values = np.fromiter(map(float, tokens), dtype=np.float64, count=len(tokens))  # (T,)
            except ValueError:
                values = None
        if values is None:
            for k, token in enumerate(field.split(",")):
                if not _TOKEN.fullmatch(token):
                    shown = token.strip()
                    what = f"bad number {shown[:40]!r}" if shown else "empty value"
                    raise self.error(
                        number,
                        _token_column(field, start, k),
                        f"{what} in channel {c + 1}; expected a decimal number, or ? or NaN for a missing value",
                    )
            raise self.error(number, start + 1, f"channel {c + 1} cannot be read as numbers")  # not reached
        with np.errstate(invalid="ignore"):
            too_big = np.flatnonzero(np.abs(values) > _FLOAT32_MAX)
        if len(too_big):
            k = int(too_big[0])
            raise self.error(
                number,
                _token_column(field, start, k),
                f"value {field.split(',')[k].strip()[:40]} is beyond float32's range (±{_FLOAT32_MAX:.4g})",
            )
        if self.header.flags.get("equallength"):
            if self.width is None:
                self.width, self.width_from = len(values), f"@equalLength true; line {number} holds {len(values)}"
            if len(values) != self.width:
                raise self.error(
                    number,
                    start + 1,
                    f"channel {c + 1} holds {len(values)} values, expected {self.width} ({self.width_from})",
                )
        missing = np.isnan(values)
        if missing.any():
            present = np.flatnonzero(~missing)
            if len(present) == 0:
                raise self.error(number, start + 1, f"channel {c + 1} holds only missing values")
            end = int(present[-1]) + 1
            gaps = np.flatnonzero(missing[:end])
            if len(gaps):
                raise self.error(
                    number,
                    _token_column(field, start, int(gaps[0])),
                    f"missing value inside channel {c + 1}; only trailing missing values (the padding of a "
                    "shorter series) are allowed: fill or drop gaps before training",
                )
            values = values[:end]
        return values


def _shown(labels: Sequence[str]) -> str:
    shown = [*labels[:20], "..."] if len(labels) > 20 else list(labels)
    return "[" + ", ".join(shown) + "]"


def read_ts(
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> SequenceDataset:
    """Read a ``.ts`` file into a :class:`SequenceDataset` (see the module's notes for every rule).

    ``class_names``: for a test or validation file, the training split's class names; labels are
    mapped onto them instead of onto this file's ``@classLabel`` list (a label absent from them is
    an error). Raises :class:`SequenceFileError` naming ``path:line:column`` of anything malformed.
    """
    if isinstance(max_line_bytes, bool) or not isinstance(max_line_bytes, int) or max_line_bytes < 1:
        raise ConfigError(f"max_line_bytes must be an int >= 1, got {max_line_bytes!r}")
    if class_names is not None:
        class_names = tuple(class_names)
        if not class_names or len(set(class_names)) != len(class_names):
            raise ConfigError(f"class_names must be distinct and not empty, got {list(class_names)}")
    p = Path(path)
    header = _Header(p)
    reader: _Reader | None = None
    data_line = 0
    last = 0
    try:
        with open(p, "rb") as f:
            for number, text in _lines(p, f, max_line_bytes):
                last = number
                stripped = text.strip()
                if not stripped or stripped.startswith("#"):
                    continue
                if reader is not None:
                    if stripped.startswith("@"):
                        raise SequenceFileError(
                            p,
                            f"header line after @data (line {data_line}); every @ line must come before it",
                            line=number,
                            column=text.index("@") + 1,
                        )
                    reader.case(number, text)
                elif stripped.startswith("@"):
                    if header.read(number, text):
                        data_line = number
                        header.check(number)
                        reader = _Reader(p, header, class_names)
                else:
                    raise SequenceFileError(
                        p,
                        "expected a header line (@key value), a comment (#) or @data before the cases",
                        line=number,
                        column=len(text) - len(text.lstrip()) + 1,
                    )
    except OSError as e:
        raise SequenceFileError(p, f"cannot read: {e.strerror or e}") from None
    if last == 0:
        raise SequenceFileError(p, "the file is empty; expected @ header lines, @data and one case per line")
    if reader is None:
        raise SequenceFileError(p, f"no @data line in {last} line(s); the cases must follow a line '@data'")
    if not reader.sequences:
        raise SequenceFileError(p, "no cases after @data", line=data_line, column=1)
    return SequenceDataset(
        tuple(reader.sequences), np.array(reader.labels, dtype=np.int64), reader.names, header.name or p.stem
    )
