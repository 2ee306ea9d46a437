"""The ``.ts`` reader (data/ts.py): the genuine UEA archive files, then every malformed input refused with its
file, line and column, and a property: any dataset written as ``.ts`` reads back exactly.
"""

from __future__ import annotations

import os
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnedge.data.sequences import SequenceFileError
from rnnedge.data.ts import read_ts
from rnnedge.errors import ConfigError, DataError

PROPERTY = settings(deadline=None, max_examples=50, derandomize=True)
REPO = Path(__file__).resolve().parents[2]


def _uea() -> Path:
    for root in (os.environ.get("RNNEDGE_DATA"), REPO.parent / "shared" / "data"):
        if root and (Path(root) / "uea" / "JapaneseVowels").is_dir() and (Path(root) / "uea" / "GunPoint").is_dir():
            return Path(root) / "uea"
    pytest.skip("the UEA files are not here: set RNNEDGE_DATA to a folder holding uea/JapaneseVowels and uea/GunPoint")


@pytest.fixture(scope="module")
def uea() -> Path:
    return _uea()


# --- the genuine archive files ---------------------------------------------------------------------------


def _naive(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """The simplest possible reading of a clean archive file, to check the reader against."""
    seqs, labels = [], []
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    for line in lines[start:]:
        if line.strip():
            *channels, label = line.split(":")
            seqs.append(np.array([[float(v) for v in c.split(",")] for c in channels], dtype=np.float32).T)
            labels.append(label)
    return seqs, labels


def test_japanese_vowels(uea: Path) -> None:
    train = read_ts(uea / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts")
    test = read_ts(uea / "JapaneseVowels" / "JapaneseVowels_TEST.ts", class_names=train.class_names)
    assert (len(train), len(test)) == (270, 370)
    assert train.name == test.name == "JapaneseVowels"
    assert train.num_channels == test.num_channels == 12
    assert train.class_names == tuple(str(k) for k in range(1, 10))
    both = np.concatenate([train.lengths, test.lengths])
    assert (both.min(), both.max()) == (7, 29)
    assert train.class_counts().tolist() == [30] * 9
    assert test.class_counts().tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    for ds, name in ((train, "TRAIN"), (test, "TEST")):
        seqs, labels = _naive(uea / "JapaneseVowels" / f"JapaneseVowels_{name}.ts")
        assert all(s.dtype == np.float32 and np.array_equal(s, n) for s, n in zip(ds.sequences, seqs, strict=True))
        assert [ds.class_names[k] for k in ds.labels] == labels
    x, lengths = train.padded()
    assert x.shape == (270, 26, 12) and x.dtype == np.float32 and np.array_equal(lengths, train.lengths)


def test_gun_point(uea: Path) -> None:
    train = read_ts(uea / "GunPoint" / "GunPoint_TRAIN.ts")
    test = read_ts(uea / "GunPoint" / "GunPoint_TEST.ts")
    assert (len(train), len(test)) == (50, 150)
    assert train.num_channels == 1 and train.class_names == test.class_names == ("1", "2")
    assert set(train.lengths.tolist()) == set(test.lengths.tolist()) == {150}
    assert train.sequences[0][0, 0] == np.float32(-0.6478854)
    seqs, labels = _naive(uea / "GunPoint" / "GunPoint_TEST.ts")
    assert all(np.array_equal(s, n) for s, n in zip(test.sequences, seqs, strict=True))
    assert [test.class_names[k] for k in test.labels] == labels


def test_a_corrupted_value_in_a_real_file_is_pinned_to_its_line_and_column(uea: Path, tmp_path: Path) -> None:
    lines = (uea / "GunPoint" / "GunPoint_TRAIN.ts").read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 5  # 0-based: 4th case
    values = lines[number].split(",")
    column = len(values[0]) + len(values[1]) + 3
    values[2] = "0.12.3"
    lines[number] = ",".join(values)
    path = tmp_path / "GunPoint_TRAIN.ts"
    path.write_text("".join(lines))
    with pytest.raises(SequenceFileError, match=re.escape(f"{path}:{number + 1}:{column}: bad number '0.12.3'")):
        read_ts(path)


# --- what a .ts file may look like -----------------------------------------------------------------------


def _write(tmp_path: Path, text: str | bytes, name: str = "toy.ts") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


HEAD = "@problemName Toy\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true a b\n@data\n"


def test_comments_case_insensitive_keys_crlf_bom_blank_lines_and_spaces(tmp_path: Path) -> None:
    text = (
        "\ufeff# a comment\r\n@PROBLEMNAME  Toy Problem\r\n@Univariate FALSE\r\n@dimensions 2\r\n"
        "#another\r\n\r\n@classlabel TRUE b a\r\n@DATA\r\n 1, 2 ,3 : 4,5,6 : a \r\n\r\n# between cases\r\n"
        "-1.5e1,.5,7.:+2,-0,1E-3:b"
    )
    ds = read_ts(_write(tmp_path, text))
    assert ds.name == "Toy Problem"
    assert ds.class_names == ("b", "a")  # the @classLabel order, not sorted
    assert ds.labels.tolist() == [1, 0]
    assert ds.sequences[0].tolist() == [[1, 4], [2, 5], [3, 6]]
    assert np.array_equal(ds.sequences[1], np.array([[-15, 2], [0.5, 0], [7, 0.001]], dtype=np.float32))


def test_unequal_lengths_and_trailing_missing_values_are_padding(tmp_path: Path) -> None:
    text = HEAD.replace("@data", "@missing true\n@data") + "1,2,3:4,5,6:a\n1,?,?:2,NaN,nan:b\n1,2,3,4,NaN:5,6,7,8,?:a\n"
    ds = read_ts(_write(tmp_path, text))
    assert ds.lengths.tolist() == [3, 1, 4]
    assert ds.sequences[1].tolist() == [[1, 2]]
    assert all(np.isfinite(s).all() for s in ds.sequences)


def test_equal_length_files_padded_with_nan_keep_their_true_lengths(tmp_path: Path) -> None:
    text = (
        "@univariate true\n@equalLength true\n@seriesLength 4\n@classLabel true 1 2\n@data\n1,2,3,4:1\n5,6,NaN,NaN:2\n"
    )
    ds = read_ts(_write(tmp_path, text))
    assert ds.lengths.tolist() == [4, 2] and ds.num_channels == 1
    assert ds.name == "toy"  # no @problemName: the file's stem


def test_the_channel_count_comes_from_the_first_case_without_dimensions(tmp_path: Path) -> None:
    ds = read_ts(_write(tmp_path, "@classLabel true x\n@data\n1:2:3:x\n4:5:6:x\n"))
    assert ds.num_channels == 3 and ds.lengths.tolist() == [1, 1]


def test_a_test_file_is_mapped_onto_the_training_classes(tmp_path: Path) -> None:
    path = _write(tmp_path, "@classLabel true b c\n@data\n1:c\n2:b\n")
    assert read_ts(path).labels.tolist() == [1, 0]
    ds = read_ts(path, class_names=("a", "b", "c"))
    assert ds.class_names == ("a", "b", "c") and ds.labels.tolist() == [2, 1]


# --- every malformed input: a SequenceFileError (a DataError) naming path:line:column ----------------------

BAD = [
    # id, text, line, column, what the message says
    ("bad number", HEAD + "1,2,x3:4,5,6:a\n", 7, 5, "bad number 'x3' in channel 1"),
    ("bad number ch2", HEAD + "1,2,3:4,5e,6:a\n", 7, 9, "bad number '5e' in channel 2"),
    ("two dots", HEAD + "1,2:3,1.2.3:a\n", 7, 7, "bad number '1.2.3'"),
    ("empty value", HEAD + "1,,3:4,5,6:a\n", 7, 3, "empty value in channel 1"),
    ("empty channel", HEAD + "1,2::a\n", 7, 5, "empty value in channel 2"),
    ("inf", HEAD + "1,inf,3:4,5,6:a\n", 7, 3, "bad number 'inf'"),
    ("underscore", HEAD + "1_0:1:a\n", 7, 1, "bad number '1_0'"),
    ("beyond float32", HEAD + "1,1e39:4,5:a\n", 7, 3, "value 1e39 is beyond float32's range"),
    ("beyond float64", HEAD + "1,2:4,-1e400:a\n", 7, 7, "value -1e400 is beyond float32's range"),
    ("too many channels", HEAD + "1,2:3,4:5,6:a\n", 7, 9, "case has 3 channel(s), expected 2 (from @dimensions)"),
    ("too few channels", HEAD + "1,2:a\n", 7, 5, "case has 1 channel(s), expected 2 (from @dimensions)"),
    ("no colon", HEAD + "1,2,3\n", 7, 6, "the class label is missing: expected the channels, ':' and the label"),
    ("label missing", HEAD + "1,2:3,4\n", 7, 8, "label is missing: the case ends with 2 channel(s) of values"),
    ("univariate label missing", "@univariate true\n@classLabel true a\n@data\n1,2,3\n", 4, 6, "label is missing"),
    ("label not listed", HEAD + "1,2:3,4:c\n", 7, 9, "class label 'c' is not in @classLabel [a, b]"),
    ("no label", HEAD + "1,2:3,4: \n", 7, 9, "no class label after the last ':'"),
    ("gap", HEAD + "1,?,3:4,5,6:a\n", 7, 3, "missing value inside channel 1; only trailing missing values"),
    ("leading NaN", HEAD + "1,2:NaN,5:a\n", 7, 5, "missing value inside channel 2"),
    ("all missing", HEAD + "?,?:1,2:a\n", 7, 1, "channel 1 holds only missing values"),
    ("channel lengths", HEAD + "1,2,3:4,5:a\n", 7, 7, "channel 2 holds 2 values, channel 1 holds 3"),
    ("channel lengths after padding", HEAD + "1,2,3:4,5,NaN:a\n", 7, 7, "channel 2 holds 2 values, channel 1 holds 3"),
    ("header after data", HEAD + "1,2:3,4:a\n@dimensions 2\n", 8, 1, "header line after @data (line 6)"),
    ("case before data", "@classLabel true a\n1,2:a\n@data\n", 2, 1, "expected a header line (@key value)"),
    ("text before header", "  hello\n@data\n", 1, 3, "expected a header line"),
    ("no cases", HEAD + "\n# nothing\n", 6, 1, "no cases after @data"),
    (
        "equal length",
        "@equalLength true\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n",
        5,
        1,
        "channel 1 holds 2 values, expected 3 (@equalLength true; line 4 holds 3)",
    ),
    (
        "series length",
        "@equalLength true\n@seriesLength 4\n@classLabel true a\n@data\n1,2,3,4:a\n1,2,3:a\n",
        6,
        1,
        "channel 1 holds 3 values, expected 4 (@seriesLength 4)",
    ),
    ("channels from first case", "@classLabel true a\n@data\n1:2:a\n1:2:3:a\n", 4, 5, "expected 2 (from line 3)"),
    ("univariate", "@univariate true\n@classLabel true a\n@data\n1:2:a\n", 4, 3, "expected 1 (from @univariate true)"),
    ("unknown key", "@problemNmae Toy\n", 1, 1, "unknown header key '@problemNmae'; known: @problemname"),
    ("repeated key", "@dimensions 2\n@DIMENSIONS 2\n", 2, 1, "'@DIMENSIONS' repeats (first at line 1)"),
    ("bad bool", "@univariate maybe\n", 1, 13, "@univariate expects true or false, got 'maybe'"),
    ("bad int", "@dimensions two\n", 1, 13, "@dimensions expects a whole number >= 1, got 'two'"),
    ("zero dimensions", "@dimensions 0\n", 1, 13, "expects a whole number >= 1, got '0'"),
    ("negative length", "@seriesLength -3\n", 1, 15, "expects a whole number >= 1, got '-3'"),
    ("unlabelled", "@classLabel false\n", 1, 13, "says the cases are unlabelled"),
    ("no labels listed", "@classLabel true\n", 1, 13, "lists no class labels after true"),
    ("classLabel junk", "@classLabel 1 2 3\n", 1, 13, "expects true followed by the class labels"),
    ("duplicate label", "@classLabel true a b a\n", 1, 13, "lists the label 'a' twice"),
    ("no classLabel", "@problemName X\n@data\n1:a\n", 2, 1, "no '@classLabel true <labels>' line before @data"),
    ("timestamps", "@timeStamps true\n@classLabel true a\n@data\n", 1, 1, "@timeStamps true ((time,value) pairs)"),
    ("regression", "@targetLabel true\n@classLabel true a\n@data\n", 1, 1, "regression problem"),
    ("dims vs univariate", "@univariate true\n@dimensions 3\n@classLabel true a\n@data\n", 2, 1, "contradicts"),
    ("data with a value", "@classLabel true a\n@data 1,2:a\n", 2, 7, "@data takes no value"),
    ("problem without name", "@problemName\n", 1, 13, "@problemName needs a name"),
    ("NUL", "@problemName X\n\x00\x01\x02junk", 2, 1, "NUL byte: binary data"),
    ("NUL mid-case", "@classLabel true a\n@data\n1,2\x00:a\n", 3, 4, "NUL byte"),
]


@pytest.mark.parametrize(("text", "line", "column", "what"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_ts_files_name_the_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, what: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(
        SequenceFileError, match=f"^{re.escape(f'{path}:{line}:{column}: ')}.*{re.escape(what)}"
    ) as info:
        read_ts(path)
    assert isinstance(info.value, DataError)
    assert (info.value.path, info.value.line, info.value.column) == (str(path), line, column)


def test_files_without_a_line_to_point_at(tmp_path: Path) -> None:
    for text, what in (
        ("", "the file is empty"),
        ("@problemName X\n@classLabel true a\n", "no @data line in 2 line(s)"),
        ("\n\n# only comments\n", "no @data line in 3 line(s)"),
    ):
        path = _write(tmp_path, text)
        with pytest.raises(SequenceFileError, match=f"^{re.escape(f'{path}: {what}')}"):
            read_ts(path)


def test_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, b"@problemName Caf\xe9\n")
    with pytest.raises(SequenceFileError, match=re.escape(f"{path}:1:17: byte b'\\xe9' is not UTF-8 text")):
        read_ts(path)


def test_a_label_outside_the_given_class_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "@classLabel true a b\n@data\n1:a\n2:b\n")
    with pytest.raises(SequenceFileError, match=re.escape(f"{path}:4:3: class label 'b' is not among the given")):
        read_ts(path, class_names=("a", "c"))
    with pytest.raises(ConfigError, match="distinct and not empty"):
        read_ts(path, class_names=("a", "a"))


def test_a_huge_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.ts"
    with open(path, "wb") as f:
        f.write(b"@classLabel true a\n@data\n1:a\n")
        f.write(b"1.25," * 2_000_000 + b"1:a\n")  # a 10 MB line
    tracemalloc.start()
    try:
        with pytest.raises(SequenceFileError, match=re.escape(f"{path}:4:1: line is longer than 1048576 bytes")):
            read_ts(path, max_line_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak} bytes while refusing a 10 MB line"


def test_a_line_at_the_limit_is_read_and_one_byte_more_is_not(tmp_path: Path) -> None:
    case = b"1,2,3,4,5,6,7,8,9,10,11,12:a"  # longer than the header lines
    path = _write(tmp_path, b"@classLabel true a\n@data\n" + case + b"\r\n")
    assert len(read_ts(path, max_line_bytes=len(case))) == 1
    with pytest.raises(SequenceFileError, match=f":3:1: line is longer than {len(case) - 1} bytes"):
        read_ts(path, max_line_bytes=len(case) - 1)
    with pytest.raises(ConfigError, match="max_line_bytes must be an int >= 1, got 0"):
        read_ts(path, max_line_bytes=0)


def test_a_missing_file_or_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SequenceFileError, match=re.escape(f"{tmp_path / 'nope.ts'}: cannot read")):
        read_ts(tmp_path / "nope.ts")
    with pytest.raises(SequenceFileError, match=re.escape(f"{tmp_path}: cannot read")):
        read_ts(tmp_path)


# --- property: write any dataset as .ts, read it back -------------------------------------------------------

_labels = st.lists(st.text("abcXYZ019_-.", min_size=1, max_size=5), min_size=1, max_size=4, unique=True)
_value = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def _datasets(draw: st.DrawFn) -> tuple[list[np.ndarray], list[int], list[str], bool]:
    names = draw(_labels)
    channels = draw(st.integers(1, 3))
    equal = draw(st.booleans())
    fixed = draw(st.integers(1, 6))
    cases = draw(st.integers(1, 5))
    seqs, labels = [], []
    for _ in range(cases):
        length = fixed if equal else draw(st.integers(1, 6))
        seqs.append(np.array(draw(st.lists(_value, min_size=length * channels, max_size=length * channels))))
        seqs[-1] = seqs[-1].astype(np.float32).reshape(length, channels)
        labels.append(draw(st.integers(0, len(names) - 1)))
    return seqs, labels, names, equal


@PROPERTY
@given(data=_datasets(), pad=st.integers(0, 3), missing=st.sampled_from(["?", "NaN", "nan"]))
def test_any_dataset_written_as_ts_reads_back_exactly(
    tmp_path_factory: pytest.TempPathFactory,
    data: tuple[list[np.ndarray], list[int], list[str], bool],
    pad: int,
    missing: str,
) -> None:
    seqs, labels, names, equal = data
    width = max(len(s) for s in seqs) + pad
    lines = [
        "# written by the property test",
        "@problemName Round",
        f"@univariate {'true' if seqs[0].shape[1] == 1 else 'false'}",
        f"@dimensions {seqs[0].shape[1]}",
        f"@equalLength {'true' if equal else 'false'}",
        *([f"@seriesLength {width}"] if equal else []),
        f"@classLabel true {' '.join(names)}",
        "@data",
    ]
    for s, k in zip(seqs, labels, strict=True):
        # padded with missing values to one width when equal-length, else as written plus `pad` missing values
        fill = width - len(s) if equal else pad
        channels = [",".join([*(repr(float(v)) for v in s[:, c]), *([missing] * fill)]) for c in range(s.shape[1])]
        lines.append(":".join([*channels, names[k]]))
    path = tmp_path_factory.mktemp("roundtrip") / "round.ts"
    path.write_text("\n".join(lines) + "\n")
    ds = read_ts(path)
    assert ds.name == "Round" and ds.class_names == tuple(names) and ds.labels.tolist() == labels
    assert len(ds.sequences) == len(seqs)
    for got, want in zip(ds.sequences, seqs, strict=True):
        assert got.dtype == np.float32 and np.array_equal(got, want)
