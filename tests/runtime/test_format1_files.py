"""Files an earlier rnnedge wrote (format version 1 row classifiers, ``tests/fixtures/format1``) keep working.

They read pixels with ``preprocessing`` (uint8, or floats in [0, 1]), and the bidirectional one
carries five state parts; nothing in today's export writes either, so these committed files are
what holds the runtime to them. Base install: no torch, no onnx.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnedge.errors import InputError, StateError
from rnnedge.runtime import ClassifierModel, load_classifier

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "format1"
EXPECTED = np.load(FIXTURES / "expected.npz")


@pytest.fixture(params=["row-lstm", "row-bilstm"])
def old(request: pytest.FixtureRequest) -> tuple[str, ClassifierModel]:
    return request.param, load_classifier(FIXTURES / f"{request.param}.onnx")


def test_they_load_as_format_1_with_pixel_preprocessing(old: tuple[str, ClassifierModel]) -> None:
    name, model = old
    assert model.metadata.format_version == 1 and model.metadata.standardize is None
    assert model.metadata.preprocessing is not None and model.metadata.lengths is None
    assert model.labels == tuple(str(d) for d in range(10))
    want = ["h", "c", "h_sum", "steps", *(["prefix"] if name == "row-bilstm" else [])]
    assert [s.name for s in model.metadata.states] == want


def test_they_compute_what_they_computed(old: tuple[str, ClassifierModel]) -> None:
    name, model = old
    images = EXPECTED["images"]
    np.testing.assert_allclose(model.predict(images), EXPECTED[f"{name}_probs"], atol=1e-6)
    np.testing.assert_allclose(model.predict(images[:, :11]), EXPECTED[f"{name}_prefix_probs"], atol=1e-6)
    np.testing.assert_allclose(model.predict(images.astype(np.float32) / 255), EXPECTED[f"{name}_probs"], atol=1e-5)


def test_a_stream_row_by_row_equals_predict_on_the_prefix(old: tuple[str, ClassifierModel]) -> None:
    _, model = old
    image = EXPECTED["images"][0]
    stream = model.stream()
    for t, row in enumerate(image, start=1):
        np.testing.assert_allclose(stream.feed(row), model.predict(image[None, :t])[0], atol=1e-5)


def test_floats_outside_0_1_are_refused(old: tuple[str, ClassifierModel]) -> None:
    _, model = old
    with pytest.raises(InputError, match=r"pixel intensities in \[0, 1\]"):
        model.predict(EXPECTED["images"].astype(np.float32))


def test_a_bidirectional_state_whose_row_count_disagrees_with_its_prefix_is_refused() -> None:
    model = load_classifier(FIXTURES / "row-bilstm.onnx")
    stream = model.stream()
    stream.feed(EXPECTED["images"][0][:5])
    parts = {k: np.array(v) for k, v in stream.state.items()}
    with pytest.raises(StateError, match=r"steps says \[4.0\] rows, but the prefix holds 5"):
        stream.state = {**parts, "steps": np.full((1, 1), 4.0, np.float32)}
    np.testing.assert_array_equal(stream.state["steps"], parts["steps"])
    stream.state = parts  # the consistent state is accepted
