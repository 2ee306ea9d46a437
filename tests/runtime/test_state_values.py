"""State values: immutable, picklable, and trusted without re-checking only when the model made them."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest

from rnnedge.runtime import LanguageModel, StateError


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
