"""State values: immutable, picklable, and trusted without re-checking only when the model made them."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest

from rnnedge.runtime import (
    ClassifierModel,
    InputError,
    LanguageModel,
    ModelFileError,
    NotPicklableError,
    StateError,
    load_classifier,
    load_language_model,
)


def test_a_state_pickles_and_deep_copies_as_plain_arrays(lm: LanguageModel) -> None:
    stream = lm.stream()
    stream.feed("the market")
    for twin in (pickle.loads(pickle.dumps(stream.state)), copy.deepcopy(stream.state)):
        assert twin.checked_by is None  # checked again when used
        restored = lm.stream()
        restored.state = twin
        np.testing.assert_array_equal(restored.feed("rose"), stream.copy().feed("rose"))


def test_a_state_cannot_be_changed_or_forged_into_trust(lm: LanguageModel) -> None:
    state = lm.init_state(1)
    with pytest.raises(TypeError):
        state.arrays["h"] = np.zeros((1, 1, 5), np.float32)  # type: ignore[index]
    with pytest.raises(ValueError):
        state["h"][...] = 1.0
    forged = dataclasses.replace(state, batch_size=3)
    assert forged.checked_by is None
    with pytest.raises(StateError, match="batch"):
        lm.step(np.zeros((3, 1), np.int64), forged)


def test_a_restored_state_answers_top_k_at_once(lm: LanguageModel) -> None:
    stream = lm.stream()
    stream.feed("the market")
    saved, expected = stream.state, stream.top_k(3)
    stream.feed("fell sharply")
    stream.state = saved
    assert stream.top_k(3) == expected  # before: "no prediction yet"
    assert np.array_equal(stream.last, lm.stream().feed("the market"))
    fresh = lm.stream()
    fresh.state = saved  # another stream of the same model takes the prediction along
    assert fresh.top_k(3) == expected
    fresh.state = pickle.loads(pickle.dumps(saved))  # a pickled state keeps its prediction (issue 22, fault 7)
    assert fresh.top_k(3) == expected
    fresh.state = lm.init_state(1)  # the initial state carries none
    with pytest.raises(InputError, match="no prediction yet"):
        fresh.top_k(3)


def test_a_stream_is_not_pickled_but_deep_copies_as_an_independent_twin(lm: LanguageModel) -> None:
    stream = lm.stream()
    stream.feed("the market")
    with pytest.raises(NotPicklableError, match=r"pickle stream\.state"):
        pickle.dumps(stream)
    with pytest.raises(NotPicklableError, match=r"load .* again"):
        pickle.dumps(lm)
    twin = copy.deepcopy(stream)
    assert twin.model is stream.model  # the session is shared, never copied
    assert np.array_equal(twin.feed("fell"), stream.feed("fell"))


def test_typed_loaders_refuse_the_other_kind(tiny_lm_onnx, tiny_onnx) -> None:
    assert isinstance(load_language_model(tiny_lm_onnx), LanguageModel)
    assert isinstance(load_classifier(tiny_onnx), ClassifierModel)
    with pytest.raises(ModelFileError, match="is a language_model, not a classifier"):
        load_classifier(tiny_lm_onnx)
    with pytest.raises(ModelFileError, match="is a causal_classifier, not a language model"):
        load_language_model(tiny_onnx)
