"""The tagger kind in the runtime: one distribution per frame, the same from predict, ragged lists and streams.

Runs on the base install with a prebuilt file (``RNNEDGE_TEST_MODELS``, tests/write_test_models.py);
with the train extra the file is exported here from a user-style module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import PREBUILT, _prebuilt

from rnnedge.runtime import InputError, TaggerModel, load

CHANNELS, CLASSES = 5, 3


def write_tagger(path: Path) -> Path:
    """An untrained 2-layer LSTM tagger written the way a user writes one, exported with ``export_module``."""
    import torch
    from torch import nn

    from rnnedge.export import export_module

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(CHANNELS, 8, num_layers=2, batch_first=True)
            self.out = nn.Linear(8, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.lstm(x)[0])

    torch.manual_seed(0)
    std = ([0.5] * CHANNELS, [2.0] * CHANNELS)
    return export_module(Tagger(), path, task="tagger", labels=["a", "b", "c"], standardize=std).path


@pytest.fixture(scope="module")
def tagger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaggerModel]:
    if PREBUILT:
        path = _prebuilt("tagger.onnx")
    else:
        pytest.importorskip("torch", reason="exporting the tagger needs the train extra")
        path = write_tagger(tmp_path_factory.mktemp("tagger") / "tagger.onnx")
    with load(path, threads=1) as model:
        assert isinstance(model, TaggerModel)
        yield model


def _sequences() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(0.5, 2.0, (n, CHANNELS)) for n in (7, 1, 13, 4)]


def test_predict_streams_and_ragged_lists_agree(tagger: TaggerModel) -> None:
    sequences = _sequences()
    ragged = tagger.predict(sequences, batch_size=3)
    assert [r.shape for r in ragged] == [(len(s), CLASSES) for s in sequences]
    for s, got in zip(sequences, ragged, strict=True):
        alone = tagger.predict(s[None])[0]
        np.testing.assert_allclose(got, alone, atol=1e-6)
        np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-5)
        stream = tagger.stream()
        pieces = [stream.feed(s[:2]), *(stream.feed(row) for row in s[2:])]
        np.testing.assert_allclose(np.concatenate(pieces), alone, atol=1e-6)  # causal: frame t from frames <= t
    assert tagger.labels == ("a", "b", "c") and tagger.feature_size == CHANNELS and tagger.causal


def test_top_k_ranks_the_last_frame(tagger: TaggerModel) -> None:
    stream = tagger.stream()
    frames = stream.feed(_sequences()[0][:4])  # (4, classes)
    last = frames[-1]
    expected = [(tagger.labels[i], float(last[i])) for i in np.argsort(-last, kind="stable")[:2]]
    assert stream.top_k(2) == tagger.top_k(frames, 2) == tagger.top_k(last, 2) == expected
    with pytest.raises(InputError, match=r"probs must be one result \(3,\), got float64 of shape \(4,\)"):
        tagger.top_k(np.ones(4), 2)


def test_a_stream_batch_gives_each_stream_its_frames(tagger: TaggerModel) -> None:
    sequences = [s[:1] for s in _sequences()]  # one frame per stream per step
    batch = tagger.stream_batch()
    for i in range(len(sequences)):
        batch.add(str(i))
    got = batch.feed({str(i): s[0] for i, s in enumerate(sequences)})
    for i, s in enumerate(sequences):
        np.testing.assert_allclose(got[str(i)], tagger.predict(s[None])[0], atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((3, CHANNELS + 1)), "each row must have 5 values"),
        (np.full((2, CHANNELS), np.nan), "NaN or infinity"),
        (np.zeros((0, CHANNELS)), "must not be empty"),
    ],
    ids=["channels", "nan", "empty"],
)
def test_bad_frames_leave_the_stream_as_it_was(tagger: TaggerModel, bad: np.ndarray, match: str) -> None:
    stream = tagger.stream()
    first = stream.feed(np.ones((2, CHANNELS)))
    state = stream.state
    with pytest.raises(InputError, match=match):
        stream.feed(bad)
    assert stream.state.arrays.keys() == state.arrays.keys()
    assert all(np.array_equal(stream.state.arrays[k], state.arrays[k]) for k in state.arrays)
    assert np.array_equal(stream.last, first)
    with pytest.raises(InputError, match="sequence 1"):
        tagger.predict([np.ones((2, CHANNELS)), bad])
