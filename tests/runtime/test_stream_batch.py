"""StreamBatch: many streams in one onnxruntime call, each bit-identical to running alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnedge.errors import ConfigError, InputError, StateError, TokenError
from rnnedge.runtime import ClassifierModel, LanguageModel, State, load


def _same_state(a: State, b: State) -> bool:
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_streams_joining_and_leaving_match_streams_run_alone(lm: LanguageModel) -> None:
    """A random schedule of joins, leaves and partial feeds; every result equals a lone stream's, bit for bit."""
    rng = np.random.default_rng(0)
    batch = lm.stream_batch()
    alone: dict[int, object] = {}
    next_key = 0
    for step in range(60):
        if len(batch) < 12 and (len(batch) == 0 or rng.random() < 0.3):  # someone joins
            batch.add(next_key)
            alone[next_key] = lm.stream()
            next_key += 1
        if len(batch) > 1 and rng.random() < 0.15:  # someone leaves, keeping its state
            key = list(batch)[int(rng.integers(len(batch)))]
            final = batch.remove(key)
            assert _same_state(final, alone.pop(key).state)  # type: ignore[attr-defined]
        keys = [k for k in batch if rng.random() < 0.7] or list(batch)[:1]
        length = 1 + step % 3
        inputs = {k: rng.integers(0, lm.vocab_size, length).tolist() for k in keys}
        results = batch.feed(inputs)
        assert list(results) == keys
        for k in keys:
            expected = alone[k].feed(inputs[k])  # type: ignore[attr-defined]
            assert results[k].shape == (lm.vocab_size,)
            np.testing.assert_array_equal(results[k], expected)
    for k in batch:
        assert _same_state(batch.state(k), alone[k].state)  # type: ignore[attr-defined]


def test_classifier_rows_in_a_batch_match_predict(clf: ClassifierModel, mnist) -> None:
    images = mnist.test_images[:5]
    batch = clf.stream_batch()
    for i in range(5):
        batch.add(f"image{i}")
    for t in range(28):
        results = batch.feed({f"image{i}": images[i, t] for i in range(5)})
    expected = clf.predict(images)
    for i in range(5):
        np.testing.assert_array_equal(results[f"image{i}"], expected[i])


def test_a_removed_state_continues_in_a_stream(lm: LanguageModel) -> None:
    batch = lm.stream_batch()
    batch.add("a")
    batch.add("b")
    batch.feed({"a": "the stock market", "b": "in the past"})
    stream = lm.stream()
    stream.state = batch.remove("a")
    reference = lm.stream()
    reference.feed("the stock market")
    np.testing.assert_array_equal(stream.feed("fell"), reference.feed("fell"))
    # and a stream's state can join a batch
    batch.add("c", stream)
    np.testing.assert_array_equal(batch.feed({"c": "sharply"})["c"], reference.feed("sharply"))


def test_a_failed_feed_changes_no_stream(lm: LanguageModel) -> None:
    batch = lm.stream_batch(strict=True)
    for k in ("a", "b", "c"):
        batch.add(k)
    batch.feed({"a": [1], "b": [2], "c": [3]})
    before = {k: batch.state(k) for k in batch}
    bad_inputs = [
        {"a": [4], "b": [lm.vocab_size]},  # an id outside the vocabulary
        {"a": [4], "b": "qwertyuiop"},  # an unknown word in strict mode
        {"a": [4], "b": [5, 6]},  # different lengths in one feed
        {"a": [4], "nobody": [5]},  # a key that is not in the batch
        {"a": []},  # nothing to feed
        {},  # no streams
    ]
    for inputs in bad_inputs:
        with pytest.raises((InputError, TokenError)):
            batch.feed(inputs)
        assert all(_same_state(batch.state(k), before[k]) for k in batch), inputs
    with pytest.raises(InputError, match="already in this batch"):
        batch.add("a")
    with pytest.raises(InputError, match="no stream 'zz'"):
        batch.remove("zz")
    with pytest.raises(StateError):
        batch.add("d", lm.init_state(2))
    assert list(batch) == ["a", "b", "c"]


def test_inputs_of_every_kind_in_one_feed(lm: LanguageModel) -> None:
    """Ids as lists, arrays of any integer type, words and text: all as a lone stream takes them."""
    inputs = {"list": [17, 4], "int32": np.array([5, 900], np.int32), "words": "the market", "text": ["a", "year"]}
    batch = lm.stream_batch()
    for k in inputs:
        batch.add(k)
    for _ in range(2):
        results = batch.feed(inputs)
    for k, x in inputs.items():
        alone = lm.stream()
        alone.feed(x)
        np.testing.assert_array_equal(results[k], alone.feed(x))


@pytest.mark.parametrize(
    "inputs, error",
    [
        ({"a": [True], "b": [False]}, InputError),
        ({"a": np.array([2**64 - 1], np.uint64), "b": np.array([1], np.uint64)}, TokenError),
        ({"a": [-1], "b": [1]}, TokenError),
        ({"a": [1.0], "b": [2.0]}, InputError),
        ({"a": [[1]], "b": [[2]]}, InputError),
    ],
)
def test_ids_that_look_stackable_but_are_wrong(lm: LanguageModel, inputs, error) -> None:
    batch = lm.stream_batch()
    batch.add("a")
    batch.add("b")
    batch.feed({"a": [3], "b": [4]})
    before = {k: batch.state(k) for k in batch}
    with pytest.raises(error):
        batch.feed(inputs)
    assert all(_same_state(batch.state(k), before[k]) for k in batch)


def test_error_names_the_different_lengths(lm: LanguageModel) -> None:
    batch = lm.stream_batch()
    batch.add(1)
    batch.add(2)
    with pytest.raises(InputError, match=r"same number of steps, got lengths \{1: 1, 2: 3\}"):
        batch.feed({1: [1], 2: [1, 2, 3]})


def test_noncausal_models_refuse_a_batch(tiny_bi_onnx: Path) -> None:
    with load(tiny_bi_onnx) as model, pytest.raises(ConfigError, match=r"model\.stream\(\)"):
        model.stream_batch()


def test_empty_batch_after_everyone_left(lm: LanguageModel) -> None:
    batch = lm.stream_batch()
    batch.add("x")
    batch.remove("x")
    assert len(batch) == 0
    batch.add("y")
    np.testing.assert_array_equal(batch.feed({"y": [7]})["y"], lm.stream().feed([7]))


def test_an_unhashable_key_is_an_input_error(lm: LanguageModel) -> None:
    batch = lm.stream_batch()
    with pytest.raises(InputError, match="hashable"):
        batch.add((1, [2]))
    assert len(batch) == 0


def test_feed_stacked_returns_one_array_in_the_inputs_order(lm: LanguageModel) -> None:
    """The rows ``feed`` returns by key, as one ``(N, V)`` array in the order of the inputs' keys."""
    a, b = lm.stream_batch(), lm.stream_batch()
    for batch in (a, b):
        for key in ("x", "y", "z"):
            batch.add(key)
    inputs = {"z": [3], "x": [1]}  # a subset, in another order than the batch's
    by_key = a.feed(inputs)
    stacked = b.feed_stacked(inputs)
    assert isinstance(stacked, np.ndarray) and stacked.shape == (2, lm.vocab_size)
    np.testing.assert_array_equal(stacked[0], by_key["z"])
    np.testing.assert_array_equal(stacked[1], by_key["x"])
    assert _same_state(a.state("y"), b.state("y")) and _same_state(a.state("z"), b.state("z"))
