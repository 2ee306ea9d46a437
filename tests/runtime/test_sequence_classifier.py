"""Sequence classifiers of a user's data in the runtime: variable lengths, raw channels, GRU and LSTM, streaming.

The models are exported from random weights (the runtime's behaviour does not depend on their
values): an LSTM with the mean head, a two-layer GRU with the last head, a bidirectional GRU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sequence_models import SEQUENCE_MODELS, prebuilt_sequence_models, write_sequence_models

from rnnedge.runtime import (
    ClassifierModel,
    InputError,
    ModelFileError,
    StateError,
    load_classifier,
    read_metadata,
)
from rnnedge.runtime.metadata import ModelMetadata

MODELS = SEQUENCE_MODELS


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Prebuilt on the base install (``$RNNEDGE_TEST_MODELS``), else exported here."""
    return prebuilt_sequence_models() or write_sequence_models(tmp_path_factory.mktemp("sequence-models"))


def _sequences(seed: int = 0, lengths: tuple[int, ...] = (5, 1, 17, 9)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(3.0, 10.0, (n, 3)) for n in lengths]  # raw values far outside [0, 1]


@pytest.mark.parametrize("name", list(MODELS))
def test_predict_on_sequences_of_different_lengths_is_each_alone(files: dict[str, Path], name: str) -> None:
    model = load_classifier(files[name])
    seqs = _sequences()
    together = model.predict(seqs)  # one onnxruntime call, padded, with lengths
    alone = np.concatenate([model.predict([s]) for s in seqs])
    assert together.shape == (4, 4)
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)
    # A padded array with lengths gives the same; the padding (NaN here) is never read.
    padded = np.full((4, 17, 3), np.nan)
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    np.testing.assert_allclose(model.predict(padded, lengths=[len(s) for s in seqs]), alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_stream_fed_frame_by_frame_equals_predict_on_each_prefix(files: dict[str, Path], name: str) -> None:
    model = load_classifier(files[name])
    seq = _sequences(1, (12,))[0]
    stream = model.stream()
    for t, frame in enumerate(seq, start=1):
        np.testing.assert_allclose(stream.feed(frame), model.predict([seq[:t]])[0], atol=1e-5, rtol=0)


def test_stream_batch_members_match_their_own_streams(files: dict[str, Path]) -> None:
    model = load_classifier(files["gru2-last"])
    seqs = _sequences(2, (6, 6, 6))
    group = model.stream_batch()
    for key in "abc":
        group.add(key)
    streams = {key: model.stream() for key in "abc"}
    for t in range(6):
        got = group.feed({key: seqs[i][t] for i, key in enumerate("abc") if t < 3 or key != "b"})
        for key, probs in got.items():
            np.testing.assert_array_equal(probs, streams[key].feed(seqs["abc".index(key)][t]))


def test_step_takes_lengths_and_each_sequence_keeps_its_own_state(files: dict[str, Path]) -> None:
    model = load_classifier(files["lstm-mean"])
    seqs = _sequences(3, (4, 7))
    x = np.zeros((2, 7, 3), np.float32)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = model.preprocess(s)
    _, state = model.step(x, model.init_state(2), lengths=np.array([4, 7]))
    more = model.preprocess(_sequences(4, (3,))[0])
    out, _ = model.step(np.stack([more, more]), state)
    for i, s in enumerate(seqs):
        np.testing.assert_allclose(
            out["probs"][i], model.predict([np.concatenate([s, _sequences(4, (3,))[0]])])[0], atol=1e-5, rtol=0
        )


def test_metadata_has_lengths_and_per_channel_standardize(files: dict[str, Path]) -> None:
    meta = read_metadata(files["lstm-mean"])
    assert meta.format_version == 1
    assert meta.lengths is not None and meta.lengths.dtype == "int64" and meta.lengths.shape == ("batch",)
    assert meta.standardize is not None and meta.standardize.mean == (0.0, 1.0, 2.0)
    assert meta.labels == ("class 0", "class 1", "class 2", "class 3")
    names = {n: [s.name for s in read_metadata(files[n]).states] for n in MODELS}
    assert names["lstm-mean"] == ["h", "c", "h_sum", "steps"]
    assert names["gru2-last"] == ["h"]  # a GRU's state is h alone
    assert names["bigru-mean"] == ["h", "h_sum", "steps", "prefix"]  # one layer: the forward direction carried
    assert names["bilstm2-last"] == ["prefix"]  # two layers: the second reads both directions of the whole prefix


def test_bad_sequences_and_lengths_are_refused_naming_what_is_wrong(files: dict[str, Path]) -> None:
    model = load_classifier(files["lstm-mean"])
    stream = model.stream()
    before = stream.feed(np.ones(3))
    cases = [
        (lambda: model.predict([np.ones((4, 3)), np.ones((2, 5))]), "sequence 1: each row must have 3 values"),
        (lambda: model.predict([np.ones((4, 3)), np.full((2, 3), np.nan)]), "sequence 1: rows contain NaN"),
        (lambda: model.predict([np.ones((0, 3))]), "sequence 0 must be an array of shape (T, 3) with T >= 1"),
        (lambda: model.predict([]), "at least one sequence"),
        (lambda: model.predict(np.ones((2, 4, 3)), lengths=[5, 1]), "lengths must be in [1, 4]"),
        (lambda: model.predict(np.ones((2, 4, 3)), lengths=[1.5, 2.0]), "lengths must be ints of shape (2,)"),
        (lambda: model.predict(np.ones((2, 4, 3)), lengths=[1]), "lengths must be ints of shape (2,)"),
        (lambda: model.predict([np.ones((2, 3))], lengths=[2]), "a list of sequences carries its own"),
        (lambda: stream.feed(np.array(["a", "b", "c"])), "rows must be ints or floats"),
        (lambda: stream.feed(np.full(3, 1e300)), "beyond float32's range"),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as err:
            call()
        assert message in str(err.value), str(err.value)
    np.testing.assert_array_equal(stream.last, before)  # the stream kept its state through the refusals
    bi = load_classifier(files["bigru-mean"])
    with pytest.raises(InputError, match="non-causal model's state keeps the rows received"):
        bi.step(np.ones((2, 4, 3), np.float32), bi.init_state(2), lengths=[4, 2])


def _edited(path: Path, tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    onnx = pytest.importorskip("onnx", reason="editing a model file's metadata needs onnx (the train extra)")

    graph = onnx.load(str(path))
    meta = json.loads(graph.metadata_props[0].value)
    change(meta)
    graph.metadata_props[0].value = json.dumps(meta)
    out = tmp_path / "edited.onnx"
    onnx.save(graph, str(out))
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format_version=2), "format version 2, but this rnnedge reads version 1"),
        (lambda m: m["lengths"].update(dtype="float32"), "lengths must be int64 of shape ['batch']"),
        (lambda m: m["lengths"].update(shape=["batch", 2]), "lengths must be int64 of shape ['batch']"),
        (lambda m: m["standardize"].update(mean=[0.0, 1.0]), "standardize has 2 means and 3 stds"),
        (lambda m: m["standardize"].update(std=[1.0, 0.0, 1.0]), "standardize.std has 0"),
        (lambda m: m["standardize"].update(mean=[0, "a", 1]), "standardize.mean must be a non-empty list of numbers"),
        (lambda m: m["standardize"].update(mean=[0, True, 1]), "standardize.mean must be a non-empty list of numbers"),
        (lambda m: m["standardize"].update(mean=[0, 1e9, 1]), "standardize.mean has values outside"),
        (lambda m: m.update(standardize=[1, 2]), "metadata field standardize has type list"),
        (
            lambda m: m.update(preprocessing={"scale": 1, "mean": 0, "std": 1}),
            "metadata field preprocessing is not part of format 1",
        ),
        (
            lambda m: m.update(standardize={"mean": [0.0] * 4, "std": [1.0] * 4}),
            "standardize has 4 values per channel, the input has 3 features",
        ),
        (lambda m: m.pop("lengths"), "metadata field lengths is missing: a classifier's metadata must carry it"),
        (lambda m: m.update(format_version=3), "upgrade rnnedge"),
    ],
    ids=[
        "v2",
        "lengths-dtype",
        "lengths-shape",
        "std-count",
        "std-zero",
        "mean-string",
        "mean-bool",
        "mean-huge",
        "standardize-list",
        "preprocessing",
        "channels",
        "no-lengths",
        "v3",
    ],
)
def test_malformed_lengths_and_standardize_are_refused_naming_the_field(
    files: dict[str, Path],
    tmp_path: Path,
    change,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(ModelFileError) as err:
        load_classifier(_edited(files["lstm-mean"], tmp_path, change))
    assert message in str(err.value)


def test_a_classifier_without_lengths_and_standardize_is_refused() -> None:
    """Format 1 has one classifier: lengths and standardize are part of it (no older shape is read)."""
    raw = {
        "format_version": 1,
        "kind": "causal_classifier",
        "causal": True,
        "model_id": "0",
        "input": {"name": "x", "dtype": "float32", "shape": ["batch", "sequence", 2]},
        "states": [],
        "outputs": [
            {"name": "logits", "dtype": "float32", "shape": ["batch", 2]},
            {"name": "probs", "dtype": "float32", "shape": ["batch", 2]},
        ],
        "config": {},
        "quality": {},
        "producer": {},
        "variant": "float32",
        "labels": ["a", "b"],
    }
    with pytest.raises(ModelFileError, match="lengths is missing: a classifier's metadata must carry it"):
        ModelMetadata.from_json(json.dumps(raw))
    raw["lengths"] = {"name": "lengths", "dtype": "int64", "shape": ["batch"]}
    raw["standardize"] = {"mean": [0.0, 1.0], "std": [1.0, 2.0]}
    meta = ModelMetadata.from_json(json.dumps(raw))
    assert ModelMetadata.from_json(meta.to_json()) == meta


def test_a_classifier_model_is_typed(files: dict[str, Path]) -> None:
    assert isinstance(load_classifier(files["gru2-last"]), ClassifierModel)
    with pytest.raises(StateError):
        load_classifier(files["gru2-last"]).stream().state = load_classifier(files["lstm-mean"]).init_state(1)
