"""Plain Python values, as JSON gives them, go where numpy arrays go (issue 22, fault 6), and messages say sequences."""

from __future__ import annotations

import numpy as np
import pytest
from sequence_models import prebuilt_sequence_models, write_sequence_models

from rnnedge.errors import InputError
from rnnedge.runtime import ClassifierModel, LanguageModel, load


def test_predict_takes_sequences_as_plain_lists(clf: ClassifierModel, mnist) -> None:
    images = mnist.test_images[:4]
    want = clf.predict(images)
    np.testing.assert_array_equal(clf.predict([s.tolist() for s in images]), want)
    np.testing.assert_array_equal(clf.predict([images[0].tolist(), images[1]]), want[:2])


def test_a_stream_takes_a_row_as_a_list(clf: ClassifierModel, mnist) -> None:
    image = mnist.test_images[0]
    by_list, by_array = clf.stream(), clf.stream()
    for row in image[:5]:
        np.testing.assert_array_equal(by_list.feed(row.tolist()), by_array.feed(row))
    np.testing.assert_array_equal(by_list.feed(image[5:9].tolist()), by_array.feed(image[5:9]))


def test_a_sensor_stream_takes_a_list_and_speaks_of_sequences(tmp_path_factory: pytest.TempPathFactory) -> None:
    files = prebuilt_sequence_models() or write_sequence_models(tmp_path_factory.mktemp("sequences"))
    with load(files["lstm-mean"]) as model:
        assert isinstance(model, ClassifierModel) and model.feature_size == 3
        by_list, by_array = model.stream(), model.stream()
        np.testing.assert_array_equal(by_list.feed([1, 2, 3]), by_array.feed(np.arange(1.0, 4.0)))
        np.testing.assert_array_equal(by_list.feed([[0.5, 2, -3]]), by_array.feed(np.array([[0.5, 2, -3]])))
        for bad in ("not sequences", [[[1, 2]]], np.zeros((2, 2))):
            with pytest.raises(InputError) as info:
                model.predict(bad)
            assert "sequence" in str(info.value) and "image" not in str(info.value), str(info.value)
        with pytest.raises(InputError, match="each row must have 3 values"):
            by_list.feed([1, 2])


@pytest.mark.parametrize(
    ("row", "given"),
    [
        ([1, 2], r"int64 of shape \(2,\)"),
        (np.ones(4), r"float64 of shape \(4,\)"),
        ([[1.5, 2]], r"float64 of shape \(1, 2\)"),
    ],
)
def test_a_row_of_the_wrong_width_is_named_as_the_caller_gave_it(clf: ClassifierModel, row: object, given: str) -> None:
    """A row ``(2,)`` is reported as ``(2,)``, not as the ``(1, 2)`` the stream makes of it; the state is kept."""
    stream = clf.stream()
    before = stream.feed(np.zeros(28, np.uint8))
    with pytest.raises(InputError, match=rf"each row must have 28 values \(channels\), got {given}$"):
        stream.feed(row)
    np.testing.assert_array_equal(stream.last, before)


def test_a_language_model_batch_predict_is_what_streams_give(lm: LanguageModel) -> None:
    sequences = ["the market fell", [4, 5], np.array([7, 8, 9, 10])]
    got = lm.predict(sequences)
    for row, seq in zip(got, sequences, strict=True):
        np.testing.assert_allclose(row, lm.stream().feed(seq), rtol=1e-5, atol=1e-7)
