"""The runtime's part of the bad-input catalogue (docs/bad_input.md): every bad input to a model,
a stream or a state gets a typed error whose message names what came in and what was expected,
and a stream whose call failed keeps exactly the state (every array, and ``last``) it had.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnedge.errors import InputError, ModelClosedError, RnnEdgeError, StateError, TokenError
from rnnedge.runtime import ClassifierModel, LanguageModel, Stream, load
from rnnedge.runtime.metadata import METADATA_KEY

PROPERTY = settings(deadline=None, max_examples=50, derandomize=True)


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def twin_clf(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClassifierModel]:
    """The same architecture under another weights fingerprint: a state of one must not run in the other."""
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(tiny_onnx))
    prop = next(p for p in graph.metadata_props if p.key == METADATA_KEY)
    prop.value = json.dumps({**json.loads(prop.value), "model_id": "0123456789abcdef"})
    path = tmp_path_factory.mktemp("twin") / "twin.onnx"
    onnx.save(graph, str(path))
    model = load(path, threads=1)
    assert isinstance(model, ClassifierModel)
    yield model
    model.close()


@pytest.fixture(scope="module")
def image(mnist) -> np.ndarray:
    return np.array(mnist.test_images[7])  # (28, 28) uint8


# -- the stream contract: a failed call changes nothing ----------------------------------------------
def snapshot(stream: Stream) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Copies of every state array and of ``last``."""
    last = stream.last
    return {k: np.array(v, copy=True) for k, v in stream.state.items()}, None if last is None else last.copy()


def assert_unchanged(stream: Stream, before: tuple[dict[str, np.ndarray], np.ndarray | None]) -> None:
    arrays, last = before
    state = stream.state
    assert sorted(state) == sorted(arrays)
    for name, want in arrays.items():
        got = state[name]
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want), name
    if last is None:
        assert stream.last is None
    else:
        assert stream.last is not None and np.array_equal(stream.last, last)


def fails_cleanly(stream: Stream, call: Any, error: type[Exception], *names: str, good: Any) -> Exception:
    """``call(stream)`` raises ``error`` naming each of ``names``; the stream is unchanged and still works.

    "Still works": fed ``good`` afterwards it returns exactly what a copy taken before the failure returns.
    """
    twin = stream.copy()
    before = snapshot(stream)
    with pytest.raises(error) as info:
        call(stream)
    assert_unchanged(stream, before)
    for name in names:
        assert name in str(info.value), f"{name!r} not in the message {str(info.value)!r}"
    np.testing.assert_array_equal(stream.feed(good), twin.feed(good))
    return info.value


def feed(x: Any) -> Any:
    return lambda stream: stream.feed(x)


def assign_state(state: Any) -> Any:
    def call(stream: Stream) -> None:
        stream.state = state

    return call


# -- classifier streams -----------------------------------------------------------------------------
BAD_ROWS = {  # refused by every classifier
    "bool": (np.zeros((3, 28), bool), InputError, ["bool"]),
    "object": (np.zeros((3, 28), object), InputError, ["object"]),
    "complex": (np.zeros((3, 28), np.complex64), InputError, ["complex64"]),
    "strings": (np.full((3, 28), "7"), InputError, ["<U1"]),
    "trailing 27": (np.zeros((3, 27), np.uint8), InputError, ["(3, 27)", "28"]),
    "trailing 29 float": (np.zeros((2, 29), np.float32), InputError, ["(2, 29)", "28"]),
    "rank 3": (np.zeros((2, 3, 28), np.uint8), InputError, ["(2, 3, 28)", "(T, 28)"]),
    "rank 0": (np.array(7, np.uint8), InputError, ["shape ()", "(28,)"]),
    "zero rows": (np.zeros((0, 28), np.uint8), InputError, ["(0, 28)", "empty"]),
    "empty row": (np.zeros(0, np.uint8), InputError, ["empty"]),
    "NaN": (np.full((2, 28), np.nan, np.float32), InputError, ["NaN", "float32"]),
    "inf": (np.full((2, 28), np.inf), InputError, ["infinity", "float64"]),
    "str": ("row", InputError, ["str", "(28,)"]),
    "None": (None, InputError, ["NoneType", "(28,)"]),
}
CASES = [pytest.param("clf", c, id=c) for c in BAD_ROWS]


@pytest.mark.parametrize(("model", "case"), CASES)
def test_bad_rows_leave_the_stream_exactly_as_it_was(
    request: pytest.FixtureRequest, image: np.ndarray, model: str, case: str
) -> None:
    clf: ClassifierModel = request.getfixturevalue(model)
    rows, error, names = BAD_ROWS[case]
    stream = clf.stream()
    stream.feed(image[:5])
    fails_cleanly(stream, feed(rows), error, *names, good=image[5:9])


@pytest.mark.parametrize(("model", "names"), [("clf", ["1e+300", "float32's range"])])
def test_finite_float64_beyond_float32_is_out_of_range(
    request: pytest.FixtureRequest, image: np.ndarray, model: str, names: list[str]
) -> None:
    stream = request.getfixturevalue(model).stream()
    stream.feed(image[:5])
    fails_cleanly(stream, feed(np.full((1, 28), 1e300)), InputError, *names, good=image[5])


@pytest.mark.parametrize("case", ["bool", "trailing 27", "NaN", "zero rows"])
def test_bad_rows_leave_the_bidirectional_prefix_exactly_as_it_was(
    bi: ClassifierModel, image: np.ndarray, case: str
) -> None:
    rows, error, names = BAD_ROWS[case]
    stream = bi.stream()
    stream.feed(image[:6])
    fails_cleanly(stream, feed(rows), error, *names, good=image[6:])
    np.testing.assert_allclose(stream.last, bi.predict(image[None])[0], atol=1e-5)


def test_non_contiguous_read_only_and_fortran_rows_are_read_correctly(clf: ClassifierModel, image: np.ndarray) -> None:
    wide = np.zeros((28, 56), np.uint8)
    wide[:, ::2] = image
    strided = wide[:, ::2]  # (28, 28) view, not contiguous
    frozen = image.copy()
    frozen.flags.writeable = False
    fortran = np.asfortranarray(image.astype(np.float64))  # raw values: the file standardises them
    want = clf.predict(image[None])[0]
    for rows in (strided, frozen, fortran):
        kept = rows.copy()
        np.testing.assert_allclose(clf.stream().feed(rows), want, atol=1e-5)
        assert np.array_equal(rows, kept), "feed must not modify the caller's array"
    one_row_at_a_time = clf.stream()
    for row in strided:  # (28,) views with a stride of 2
        got = one_row_at_a_time.feed(row)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_huge_sequences_stream_in_one_call(clf: ClassifierModel, bi: ClassifierModel, image: np.ndarray) -> None:
    rows = np.tile(image, (500, 1))  # (14000, 28): 500 images one after another
    whole = clf.stream().feed(rows)
    chunked = clf.stream()
    for lo in range(0, len(rows), 3500):
        got = chunked.feed(rows[lo : lo + 3500])
    np.testing.assert_allclose(got, whole, atol=1e-5)
    np.testing.assert_allclose(whole, clf.predict(rows[None])[0], atol=1e-5)
    assert np.isfinite(whole).all() and whole.sum() == pytest.approx(1.0, abs=1e-5)
    long_bi = bi.stream()
    long_bi.feed(rows[:2000])
    assert long_bi.state["prefix"].shape == (1, 2000, 28)
    np.testing.assert_allclose(long_bi.feed(rows[2000:2800]), bi.predict(rows[None, :2800])[0], atol=1e-5)


def test_a_stream_past_the_exact_row_count_is_refused(clf: ClassifierModel, image: np.ndarray) -> None:
    stream = clf.stream()
    parts = {k: np.array(v) for k, v in clf.init_state(1).items()}
    stream.state = {**parts, "steps": np.full((1, 1), 2.0**24, np.float32)}  # as if 16,777,216 rows were fed
    before = snapshot(stream)
    with pytest.raises(InputError, match="16777216"):
        stream.feed(image[:1])
    assert_unchanged(stream, before)


# -- the functional core and predict -----------------------------------------------------------------
BAD_STEP_INPUTS = {
    "float64": (np.zeros((2, 3, 28)), ["float64", "float32", "(N, T, 28)"]),
    "uint8 pixels": (np.zeros((2, 3, 28), np.uint8), ["uint8", "float32"]),
    "rank 2": (np.zeros((3, 28), np.float32), ["(3, 28)", "(N, T, 28)"]),
    "zero batch": (np.zeros((0, 3, 28), np.float32), ["(0, 3, 28)", "(N, T, 28)"]),
    "zero sequence": (np.zeros((2, 0, 28), np.float32), ["(2, 0, 28)", "(N, T, 28)"]),
    "trailing 27": (np.zeros((2, 3, 27), np.float32), ["(2, 3, 27)", "(N, T, 28)"]),
    "NaN": (np.full((2, 3, 28), np.nan, np.float32), ["NaN"]),
    "list": ([[[0.0] * 28]], ["list", "(N, T, 28)"]),
}


@pytest.mark.parametrize("case", list(BAD_STEP_INPUTS))
def test_step_refuses_bad_graph_input(clf: ClassifierModel, case: str) -> None:
    x, names = BAD_STEP_INPUTS[case]
    state = clf.init_state(2)
    before = {k: v.copy() for k, v in state.items()}
    with pytest.raises(InputError) as info:
        clf.step(x, state)
    for name in names:
        assert name in str(info.value)
    assert all(np.array_equal(state[k], v) for k, v in before.items())


@pytest.mark.parametrize("batch", [0, -1, True, 2.5, "2", None])
def test_init_state_refuses_a_bad_batch_size(clf: ClassifierModel, batch: Any) -> None:
    with pytest.raises(InputError, match=rf"batch must be a positive int, got {batch!r}"):
        clf.init_state(batch)


def test_init_state_refuses_an_absurd_batch_size(clf: ClassifierModel) -> None:
    with pytest.raises(InputError, match="1000000000000"):
        clf.init_state(10**12)


def test_predict_refuses_bad_sequences(clf: ClassifierModel, image: np.ndarray) -> None:
    for images, names in [
        (image, ["(28, 28)", "(N, T, 28)"]),
        (image[None].astype(bool), ["bool", "ints or floats"]),
        (np.full((1, 2, 28), np.nan), ["NaN"]),
        (np.zeros((0, 28, 28), np.uint8), ["(0, 28, 28)", "at least one"]),
        ([image[:3].tolist(), "row"], ["sequence 1", "str"]),
        ("images", ["str", "(N, T, 28)"]),
    ]:
        with pytest.raises(InputError) as info:
            clf.predict(images)
        assert all(n in str(info.value) for n in names), str(info.value)
    with pytest.raises(InputError, match="batch_size must be >= 1, got 0"):
        clf.predict(image[None], batch_size=0)


@pytest.mark.parametrize("batch_size", [2.5, "3"])
def test_predict_refuses_a_batch_size_that_is_not_an_int(
    clf: ClassifierModel, image: np.ndarray, batch_size: Any
) -> None:
    with pytest.raises(InputError, match="batch_size"):
        clf.predict(image[None], batch_size=batch_size)


# -- states -----------------------------------------------------------------------------------------
def test_foreign_and_malformed_states_are_refused_and_change_nothing(
    clf: ClassifierModel, bi: ClassifierModel, lm: LanguageModel, twin_clf: ClassifierModel, image: np.ndarray
) -> None:
    parts = {k: np.array(v) for k, v in clf.init_state(1).items()}
    cases: list[tuple[Any, list[str]]] = [
        (lm.init_state(1), ["belongs to model", lm.metadata.model_id, clf.metadata.model_id]),
        (bi.init_state(1), ["belongs to model", bi.metadata.model_id]),
        (twin_clf.init_state(1), ["belongs to model", "0123456789abcdef", clf.metadata.model_id]),
        ({k: np.array(v) for k, v in lm.init_state(1).items()}, ["['c', 'h', 'h_sum', 'steps']", "['c', 'h']"]),
        (clf.init_state(2), ["batch 2", "batch 1"]),
        ({k: np.repeat(v, 2, axis=v.ndim - 2) for k, v in parts.items()}, ["batch 2", "batch 1"]),
        ({**parts, "h": parts["h"].astype(np.float64)}, ["state part h", "float32", "float64"]),
        ({**parts, "c": parts["c"].astype(np.float16)}, ["state part c", "float32", "float16"]),
        ({**parts, "h": np.zeros((1, 1, 25), np.float32)}, ["(1, N, 24)", "(1, 1, 25)"]),
        ({**parts, "h_sum": np.full((1, 24), np.nan, np.float32)}, ["h_sum", "NaN"]),
        ({**parts, "steps": parts["steps"].tolist()}, ["state part steps", "list"]),
        ([parts["h"], parts["c"]], ["State or a mapping", "list"]),
        (None, ["State or a mapping", "NoneType"]),
    ]
    for bad, names in cases:
        stream = clf.stream()
        stream.feed(image[:4])
        fails_cleanly(stream, assign_state(bad), StateError, *names, good=image[4:10])


def test_language_model_states_are_checked_too(lm: LanguageModel, clf: ClassifierModel) -> None:
    h = np.array(lm.init_state(1)["h"])
    cases: list[tuple[Any, list[str]]] = [
        (clf.init_state(1), ["belongs to model"]),
        (lm.init_state(3), ["batch 3"]),
        ({"h": h, "c": h.astype(np.float64)}, ["state part c", "float32", "float64"]),
        ({"h": h, "c": np.zeros((h.shape[0], 2, h.shape[2]), np.float32)}, ["state part c", "batch 2", "have 1"]),
        ({"h": h}, ["['c', 'h']", "['h']"]),
    ]
    for bad, names in cases:
        stream = lm.stream()
        stream.feed("the market")
        fails_cleanly(stream, assign_state(bad), StateError, *names, good="rose")
    with pytest.raises(StateError, match="batch 1, the input has batch 2"):
        lm.step(np.zeros((2, 3), np.int64), lm.init_state(1))


def test_states_given_as_non_contiguous_or_read_only_arrays_work(clf: ClassifierModel, image: np.ndarray) -> None:
    stream = clf.stream()
    stream.feed(image[:9])
    saved = {k: np.asfortranarray(np.array(v)) for k, v in stream.state.items()}
    saved["h_sum"] = np.repeat(saved["h_sum"], 2, axis=1)[:, ::2]  # (1, 24) view with a stride of 2
    for a in saved.values():
        a.flags.writeable = False
    restored = clf.stream()
    restored.state = saved
    np.testing.assert_allclose(restored.feed(image[9:]), clf.predict(image[None])[0], atol=1e-5)


# -- a closed model -------------------------------------------------------------------------------------
def test_a_stream_of_a_closed_model_keeps_its_state(tiny_onnx: Path, image: np.ndarray) -> None:
    model = load(tiny_onnx, threads=1)
    assert isinstance(model, ClassifierModel)
    stream = model.stream()
    stream.feed(image[:10])
    before = snapshot(stream)
    model.close()
    for call in (lambda: stream.feed(image[10:12]), lambda: model.step(np.zeros((1, 1, 28), np.float32), stream.state)):
        with pytest.raises(ModelClosedError, match="was closed"):
            call()
    with pytest.raises(ModelClosedError):
        model.predict(image[None])
    assert_unchanged(stream, before)
    with load(tiny_onnx, threads=1) as reopened:  # the state is a value: it carries over to the reopened file
        assert isinstance(reopened, ClassifierModel)
        resumed = reopened.stream()
        resumed.state = stream.state
        np.testing.assert_allclose(resumed.feed(image[10:]), reopened.predict(image[None])[0], atol=1e-5)


def test_a_language_stream_of_a_closed_model_keeps_its_state(tiny_lm_onnx: Path) -> None:
    model = load(tiny_lm_onnx, threads=1)
    assert isinstance(model, LanguageModel)
    stream = model.stream()
    stream.feed("the company said")
    before = snapshot(stream)
    model.close()
    with pytest.raises(ModelClosedError):
        stream.feed("it")
    assert_unchanged(stream, before)
    with pytest.raises(ModelClosedError):
        next(iter(model.generate("the", 3, seed=0)))
    with pytest.raises(ModelClosedError):
        model.perplexity("the company said it")


# -- language streams -------------------------------------------------------------------------------
BAD_WORDS = {
    "negative id": ([-1], TokenError, ["-1", "[0, 10000)"]),
    "id = vocab size": ([10_000], TokenError, ["10000", "[0, 10000)"]),
    "array id too big": (np.array([3, 10_000]), TokenError, ["10000", "[0, 10000)"]),
    "uint64 id": (np.array([2**64 - 1], np.uint64), TokenError, ["18446744073709551615", "[0, 10000)"]),
    "float ids": (np.array([1.0, 2.0]), InputError, ["float64", "integer array"]),
    "bool ids": ([True, False], InputError, ["bool", "ints"]),
    "mixed ids": ([1, "the"], InputError, ["str", "ints"]),
    "object ids": (np.array([1, 2], object), InputError, ["object", "integer array"]),
    "2-D ids": (np.zeros((2, 3), np.int64), InputError, ["(2, 3)", "(T,)"]),
    "0-D id": (np.array(5), InputError, ["shape ()", "(T,)"]),
    "bare int": (5, InputError, ["int", "list of ints"]),
    "empty text": ("", InputError, ["no words", "at least one"]),
    "blank text": (" \n\t ", InputError, ["no words", "at least one"]),
    "empty list": ([], InputError, ["no token ids", "at least one"]),
    "empty ids": (np.array([], np.int64), InputError, ["no token ids", "at least one"]),
    "None": (None, InputError, ["NoneType", "list of ints"]),
    "bytes": (b"the", InputError, ["bytes", "list of ints"]),
}


@pytest.mark.parametrize("case", list(BAD_WORDS))
def test_bad_words_and_ids_leave_the_language_stream_exactly_as_it_was(lm: LanguageModel, case: str) -> None:
    bad, error, names = BAD_WORDS[case]
    stream = lm.stream()
    stream.feed("the market")
    fails_cleanly(stream, feed(bad), error, *names, good="rose")


def test_unknown_words_in_strict_mode(lm: LanguageModel) -> None:
    stream = lm.stream(strict=True)
    stream.feed("the market")
    fails_cleanly(stream, feed("the zzqxw fell"), TokenError, "'zzqxw'", "10000-word vocabulary", good="rose")
    fails_cleanly(stream, feed(["zzqxw", "qqq"]), TokenError, "2 word(s)", "'qqq'", good="fell")
    lenient = lm.stream()
    np.testing.assert_array_equal(lenient.feed("zzqxw"), lm.stream().feed([lm.unk_id]))


@pytest.mark.parametrize("big", [2**63, 2**70, -(2**70)])
def test_ids_beyond_int64_are_token_errors(lm: LanguageModel, big: int) -> None:
    stream = lm.stream()
    stream.feed("the market")
    fails_cleanly(stream, feed([1, big]), TokenError, str(big), "[0, 10000)", good="rose")


def test_non_contiguous_and_read_only_ids_are_read_correctly(lm: LanguageModel) -> None:
    ids = np.arange(40, dtype=np.int64) * 7 % lm.vocab_size
    strided = ids[::2]
    frozen = strided.copy()
    frozen.flags.writeable = False
    want = lm.stream().feed(strided.copy())
    np.testing.assert_array_equal(lm.stream().feed(strided), want)
    np.testing.assert_array_equal(lm.stream().feed(frozen), want)
    np.testing.assert_array_equal(lm.stream().feed(strided.astype(np.int16)), want)


def test_a_huge_word_sequence_equals_feeding_it_in_chunks(lm: LanguageModel) -> None:
    ids = np.random.default_rng(3).integers(0, lm.vocab_size, 1500)
    whole = lm.stream()
    got = whole.feed(ids)
    chunked = lm.stream()
    for lo in range(0, len(ids), 100):
        want = chunked.feed(ids[lo : lo + 100])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert got.shape == (lm.vocab_size,) and float(got.sum()) == pytest.approx(1.0, abs=1e-4)


_MEMORY_PROBE = """
import sys
import numpy as np
from rnnedge.runtime import load

def peak_mb():  # VmHWM: this address space's peak (ru_maxrss would start at the forking parent's size)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

stream = load(sys.argv[1], threads=1).stream()
stream.feed([1, 2, 3])
before = peak_mb()
stream.feed(np.arange(int(sys.argv[2])) % 10000)
print(peak_mb() - before)
"""


def test_a_huge_word_sequence_streams_in_bounded_memory(tiny_lm_onnx: Path) -> None:
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs Linux's /proc/self/status to read the peak memory")
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(tiny_lm_onnx), "3000"], capture_output=True, text=True, check=True
    )
    grew_mb = float(out.stdout.split()[-1])
    assert grew_mb < 64, f"feeding 3,000 words grew the peak memory by {grew_mb:.0f} MB"


def test_generate_perplexity_and_top_k_refuse_bad_arguments(lm: LanguageModel, tmp_path: Path) -> None:
    for kwargs, names in [
        ({"temperature": 0}, ["temperature", "> 0", "0"]),
        ({"temperature": float("inf")}, ["temperature", "inf"]),
        ({"top_k": 0}, ["top_k", "[1, 10000]", "0"]),
        ({"top_k": 10_001}, ["top_k", "10001"]),
        ({"max_words": -1}, ["max_words", ">= 0", "-1"]),
        ({"max_words": 2.5}, ["max_words", "2.5"]),
        ({"seed": -1}, ["seed", ">= 0", "-1"]),
        ({"seed": 2**64}, ["seed", "< 2**64", str(2**64)]),
        ({"prompt": ""}, ["no words"]),
        ({"prompt": "zzqxw", "strict": True}, ["'zzqxw'"]),
    ]:
        with pytest.raises(InputError) as info:
            lm.generate(**{"prompt": "the", "max_words": 3, **kwargs})  # type: ignore[arg-type]
        assert all(n in str(info.value) for n in names), str(info.value)
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00abc")
    for call, names in [
        (lambda: lm.perplexity(""), ["at least 2 tokens", "got 0"]),
        (lambda: lm.perplexity("a b", window=0), ["window", ">= 1", "0"]),
        (lambda: lm.perplexity(tmp_path / "missing.txt"), ["missing.txt"]),
        (lambda: lm.perplexity(tmp_path / "binary.txt"), ["binary.txt", "line 1, column 1", "not UTF-8"]),
        (lambda: lm.perplexity_of_ids([1]), ["at least 2", "got 1"]),
        (lambda: lm.top_k(np.ones(lm.vocab_size, np.float32), 0), ["k", "[1, 10000]", "0"]),
    ]:
        with pytest.raises(InputError) as info:
            call()
        assert all(n in str(info.value) for n in names), str(info.value)


def test_perplexity_of_ids_refuses_a_bad_window(lm: LanguageModel) -> None:
    with pytest.raises(InputError, match="window"):
        lm.perplexity_of_ids([1, 2, 3], window=0)


def test_a_vanishing_temperature_is_greedy_or_refused(lm: LanguageModel) -> None:
    try:
        words = list(lm.generate("the", 5, temperature=1e-300, seed=0))
    except InputError as e:
        assert "temperature" in str(e)
        return
    assert words == list(lm.generate("the", 5, top_k=1, seed=0))


# -- properties -------------------------------------------------------------------------------------
_ROW_DTYPES = ["uint8", "float16", "float32", "float64", "int8", "int32", "int64", "uint16", "bool", "complex64"]
_ODD_FLOATS = [np.nan, np.inf, -np.inf, -0.5, 1.5, 255.0, -1e30, 3e38]


@st.composite
def row_arrays(draw: st.DrawFn) -> Any:
    """Arrays of many dtypes, ranks and sizes (trailing 28 half the time), laid out in several ways."""
    dtype = np.dtype(draw(st.sampled_from(_ROW_DTYPES)))
    shape = draw(st.lists(st.sampled_from([0, 1, 2, 5, 27, 28, 29]), min_size=0, max_size=3))
    if shape and draw(st.booleans()):
        shape[-1] = 28
    if dtype.kind == "f":
        width = 8 * dtype.itemsize if dtype.itemsize < 8 else 32  # float64 holds float32 values: no overflow
        fits = [v for v in _ODD_FLOATS if not np.isfinite(v) or abs(v) <= float(np.finfo(dtype).max)]
        odd = st.floats(0, 1, width=width) | st.sampled_from(fits).map(dtype.type)
        elements = st.floats(0, 1, width=width) if draw(st.booleans()) else odd
    else:
        elements = None
    a = draw(hnp.arrays(dtype, tuple(shape), elements=elements))
    layout = draw(st.sampled_from(["c", "fortran", "strided", "read-only", "object", "list"]))
    if layout == "fortran":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim:
        a = np.stack([a, a], axis=-1)[..., 0]
    elif layout == "read-only":
        a.flags.writeable = False
    elif layout == "object":
        a = a.astype(object)
    elif layout == "list":
        return a.tolist()
    return a


def _as_rows(rows: Any) -> np.ndarray | None:
    """What a classifier stream should accept: real values (arrays, or plain lists), finite, within float32."""
    if isinstance(rows, list):
        try:
            rows = np.array(rows)
        except ValueError:
            return None
    if not isinstance(rows, np.ndarray) or rows.dtype.kind not in "iuf":
        return None
    if rows.ndim not in (1, 2) or rows.shape[-1] != 28 or rows.size == 0:
        return None
    if not np.isfinite(rows).all() or float(np.abs(rows).max()) > float(np.finfo(np.float32).max):
        return None
    return rows


@PROPERTY
@given(rows=row_arrays())
def test_any_array_fed_to_a_classifier_stream_is_answered_correctly_or_refused_cleanly(
    clf: ClassifierModel, image: np.ndarray, rows: Any
) -> None:
    """Raw real values in any int or float dtype, as arrays or plain lists; everything else refused cleanly."""
    stream = clf.stream()
    prefix = image[:5].astype(np.float64)  # (5, 28)
    stream.feed(prefix)
    accepted = _as_rows(rows)
    if accepted is None:
        before = snapshot(stream)
        with pytest.raises(InputError):
            stream.feed(rows)
        assert_unchanged(stream, before)
        return
    got = stream.feed(rows)
    want = clf.predict(np.concatenate([prefix, accepted.astype(np.float32).astype(np.float64).reshape(-1, 28)])[None])[
        0
    ]
    assert got.shape == (10,) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert float(got.sum()) == pytest.approx(1.0, abs=1e-5)


@st.composite
def id_inputs(draw: st.DrawFn) -> Any:
    ids = draw(st.lists(st.integers(0, 9_999) | st.integers(-(2**63), 2**63 - 1), max_size=12))
    form = draw(st.sampled_from(["list", "tuple", "int64", "int32"]))
    if form == "tuple":
        return tuple(ids)
    if form == "int32":
        return np.array([i for i in ids if -(2**31) <= i < 2**31], np.int32)
    return np.array(ids, np.int64) if form == "int64" else ids


@PROPERTY
@given(ids=id_inputs())
def test_any_integer_ids_fed_to_a_language_stream_predict_or_are_refused_cleanly(lm: LanguageModel, ids: Any) -> None:
    stream = lm.stream()
    stream.feed([5, 6])
    values = [int(i) for i in ids]
    if not values or not all(0 <= i < lm.vocab_size for i in values):
        before = snapshot(stream)
        with pytest.raises(TokenError if values else InputError) as info:
            stream.feed(ids)
        assert_unchanged(stream, before)
        if values:
            assert f"[0, {lm.vocab_size})" in str(info.value)
        return
    probs = stream.feed(ids)
    assert probs.shape == (lm.vocab_size,) and probs.dtype == np.float32 and np.isfinite(probs).all()
    assert float(probs.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-4)
    logits = lm.step(np.array([[5, 6, *values]], np.int64), lm.init_state(1))[0]["logits"][0, -1]
    want = np.exp(logits - logits.max())
    np.testing.assert_allclose(probs, want / want.sum(), rtol=1e-4, atol=1e-7)


def test_every_runtime_error_is_an_rnnedge_error() -> None:
    """The catalogue's promise in one line: callers can catch RnnEdgeError (and ValueError for input errors)."""
    for error in (InputError, StateError, TokenError, ModelClosedError):
        assert issubclass(error, RnnEdgeError)
    assert issubclass(TokenError, InputError) and issubclass(StateError, InputError)
    assert issubclass(InputError, ValueError)
