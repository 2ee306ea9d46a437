"""The bidirectional classifier: exact prefix streaming through the same API as the causal model."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnedge.errors import InputError, StateError
from rnnedge.runtime import ClassifierModel, load


@pytest.fixture(scope="module")
def model(tiny_bi_onnx: Path) -> ClassifierModel:
    loaded = load(tiny_bi_onnx)
    assert isinstance(loaded, ClassifierModel)
    return loaded


def test_metadata_says_non_causal(model: ClassifierModel) -> None:
    assert model.kind == "noncausal_classifier" and not model.causal
    assert [s.name for s in model.metadata.states] == ["h", "c", "h_sum", "steps", "prefix"]
    assert model.metadata.config["model"]["bidirectional"] is True


def test_graph_has_forward_and_reverse_native_lstms(tiny_bi_onnx: Path) -> None:
    """One layer: the forward direction carries its state over the chunk, the reverse one re-reads the prefix."""
    onnx = pytest.importorskip("onnx")
    nodes = [n for n in onnx.load(str(tiny_bi_onnx)).graph.node if n.op_type == "LSTM"]
    directions = sorted(next(a.s.decode() for a in n.attribute if a.name == "direction") for n in nodes)
    assert directions == ["forward", "reverse"]


def test_every_prefix_matches_pytorch_on_that_prefix(model: ClassifierModel, mnist, tiny_bi_checkpoint: Path) -> None:
    torch = pytest.importorskip("torch")
    from rnnedge.training.checkpoint import load_checkpoint
    from rnnedge.training.kinds import build_from_checkpoint

    ckpt = load_checkpoint(tiny_bi_checkpoint)
    torch_model = build_from_checkpoint(ckpt)
    images = mnist.test_images[:4]
    mean, std = (np.array(ckpt["standardize"][k], np.float32) for k in ("mean", "std"))
    x = torch.from_numpy((images.astype(np.float32) - mean) / std)
    streams = [model.stream() for _ in images]
    for t in range(28):
        with torch.no_grad():
            want = torch.softmax(torch_model(x[:, : t + 1]), -1).numpy()
        got = np.stack([s.feed(img[t]) for s, img in zip(streams, images, strict=True)])
        np.testing.assert_allclose(got, want, atol=1e-5)
        np.testing.assert_allclose(got, model.predict(images[:, : t + 1]), atol=1e-5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 27), max_size=8, unique=True), index=st.integers(0, 9999))
def test_random_chunkings_equal_predict_on_prefix(model: ClassifierModel, mnist, cuts: list[int], index: int) -> None:
    image = mnist.test_images[index]
    bounds = [0, *sorted(cuts), 28]
    stream = model.stream()
    for a, b in itertools.pairwise(bounds):
        np.testing.assert_allclose(stream.feed(image[a:b]), model.predict(image[None, :b])[0], atol=1e-5)


def test_bad_input_leaves_the_prefix_unchanged(model: ClassifierModel, mnist) -> None:
    stream = model.stream()
    stream.feed(mnist.test_images[0][:6])
    before = stream.state
    with pytest.raises(InputError):
        stream.feed(np.zeros((2, 27), np.uint8))
    assert stream.state is before and stream.state["prefix"].shape == (1, 6, 28)
    restored = model.stream()
    restored.state = before
    np.testing.assert_allclose(
        restored.feed(mnist.test_images[0][6:]), model.predict(mnist.test_images[:1])[0], atol=1e-5
    )


def test_a_state_whose_row_count_disagrees_with_its_prefix_is_refused(model: ClassifierModel, mnist) -> None:
    stream = model.stream()
    stream.feed(mnist.test_images[0][:5])
    parts = {k: np.array(v) for k, v in stream.state.items()}
    with pytest.raises(StateError, match=r"steps says \[4.0\] rows, but the prefix holds 5"):
        stream.state = {**parts, "steps": np.full((1, 1), 4.0, np.float32)}
    np.testing.assert_array_equal(stream.state["steps"], parts["steps"])
    stream.state = parts  # the consistent state is accepted
