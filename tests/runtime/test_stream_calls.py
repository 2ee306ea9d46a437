"""Passive streams: the model advances one stream or a list of them in one call, all or nothing."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rnnedge.errors import ConcurrentUseError, ConfigError, InputError, TokenError
from rnnedge.runtime import ClassifierModel, LanguageModel, Stream


def test_a_list_of_streams_advances_in_one_call_as_each_alone(lm: LanguageModel) -> None:
    streams = [lm.stream() for _ in range(3)]
    alone = [lm.stream() for _ in range(3)]
    for step in ([[1], [2], [3]], ["the", "a", "market"], [np.array([7]), [8], "rose"]):
        stacked = lm.feed(streams, step)
        assert stacked.shape == (3, lm.vocab_size)
        for i, (s, a) in enumerate(zip(streams, alone, strict=True)):
            np.testing.assert_array_equal(stacked[i], a.feed(step[i]))
            assert s.last is not None and np.array_equal(s.last, stacked[i])
            for name in a.state:  # read between calls of the same group: never a stale state
                np.testing.assert_array_equal(s.state[name], a.state[name])
    # a stream of a batch call goes on alone, and joins another group
    np.testing.assert_array_equal(streams[1].feed("fell"), alone[1].feed("fell"))
    got = lm.feed([streams[2], streams[0]], [[4], [5]])
    np.testing.assert_array_equal(got[0], alone[2].feed([4]))
    np.testing.assert_array_equal(got[1], alone[0].feed([5]))
    for s, a in zip(streams, alone, strict=True):
        for name in a.state:
            np.testing.assert_array_equal(s.state[name], a.state[name])


def test_advance_takes_converted_inputs(lm: LanguageModel) -> None:
    streams = [lm.stream(), lm.stream(strict=True)]
    x = lm.stack([[3, 4], "the market"], strict=[False, True])
    stacked = lm.advance(streams, x)
    for row, ids in zip(stacked, x, strict=True):
        np.testing.assert_array_equal(row, lm.stream().feed(ids))
    with pytest.raises(InputError, match="2 sequences for 1 streams"):
        lm.advance(streams[:1], x)


def test_a_failed_call_changes_no_stream(lm: LanguageModel) -> None:
    streams = [lm.stream(strict=True) for _ in range(2)]
    lm.feed(streams, [[1], [2]])
    before = [(s.state, s.last) for s in streams]
    for inputs, error in (
        ([[1], [lm.vocab_size]], TokenError),
        ([[1], "qwertyuiop"], TokenError),
        ([[1], [2, 3]], InputError),
        ([[1]], InputError),
    ):
        with pytest.raises(error):
            lm.feed(streams, inputs)
        assert all(s.state is st and s.last is last for s, (st, last) in zip(streams, before, strict=True))
    with pytest.raises(InputError, match="appears twice"):
        lm.feed([streams[0], streams[0]], [[1], [2]])


def test_a_stream_in_use_elsewhere_is_refused_and_nothing_changes(lm: LanguageModel) -> None:
    streams = [lm.stream(), lm.stream()]
    busy = streams[1]._lock
    busy.acquire()  # another thread is inside streams[1].feed()
    try:
        before = streams[0].state
        with pytest.raises(ConcurrentUseError):
            lm.feed(streams, [[1], [2]])
        assert streams[0].state is before
        assert not streams[0]._lock.locked()  # what the call took, it gave back
    finally:
        busy.release()
    assert threading.active_count() >= 1


def test_a_classifier_batch_and_its_limits(clf: ClassifierModel, bi: ClassifierModel, mnist) -> None:
    images = mnist.test_images[:4]
    streams = [clf.stream() for _ in images]
    for t in range(3):
        got = clf.feed(streams, [img[t].tolist() if t % 2 else img[t] for img in images])
    np.testing.assert_allclose(got, clf.predict(images[:, :3]), atol=1e-6)
    assert all(isinstance(s, Stream) for s in streams)
    with pytest.raises(ConfigError, match="feed each stream alone"):
        bi.feed([bi.stream(), bi.stream()], [images[0][0], images[1][0]])
    with pytest.raises(InputError, match="stream of this model"):
        clf.feed([clf.stream(), bi.stream()], [images[0][0], images[1][0]])
