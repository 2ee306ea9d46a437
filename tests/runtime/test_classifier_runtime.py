"""The runtime on a real exported classifier: batch, prefixes, streams, state values and bad input."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnedge.errors import (
    ConcurrentUseError,
    ConfigError,
    InputError,
    ModelClosedError,
    ProviderError,
    StateError,
)
from rnnedge.runtime import ClassifierModel, State, load


@pytest.fixture(scope="module")
def model(tiny_onnx: Path) -> ClassifierModel:
    loaded = load(tiny_onnx)
    assert isinstance(loaded, ClassifierModel)
    return loaded


def test_predict_matches_pytorch_accuracy(model: ClassifierModel, mnist, tiny_checkpoint: Path) -> None:
    from rnnedge.training.checkpoint import load_checkpoint

    probs = model.predict(mnist.test_images)
    assert probs.shape == (10000, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    accuracy = float((probs.argmax(1) == mnist.test_labels).mean())
    assert accuracy == pytest.approx(load_checkpoint(tiny_checkpoint)["metrics"]["test_accuracy"], abs=2e-4)


def test_uint8_int_and_float_pixels_agree(model: ClassifierModel, mnist) -> None:
    """Raw pixel values in any dtype, as arrays or as plain lists."""
    images = mnist.test_images[:16]
    want = model.predict(images)
    for same in (images.astype(np.int64), images.astype(np.float64), images.astype(np.float32)):
        np.testing.assert_allclose(model.predict(same), want, atol=1e-6)
    np.testing.assert_allclose(model.predict([s.tolist() for s in images]), want, atol=1e-6)


def test_pixels_are_normalised_by_table_exactly_as_by_arithmetic(model: ClassifierModel) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(40, 28)).astype(np.uint8)
    pixels[0, :] = 0
    pixels[1, :] = 255
    std = model.metadata.standardize
    assert std is not None
    x = pixels.astype(np.float32)
    x -= np.asarray(std.mean, np.float32)
    x /= np.asarray(std.std, np.float32)
    for got in (model.preprocess(pixels), model.stream_input(pixels[3])[0]):
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, x if got.shape == x.shape else x[3:4])
    np.testing.assert_array_equal(model.preprocess(pixels), model.preprocess(pixels.astype(np.int16)))


def test_the_compiled_session_call_gives_what_the_public_run_gives(model: ClassifierModel, mnist) -> None:
    from rnnedge.runtime.session import run_function

    feeds = {"x": model.preprocess(mnist.test_images[:3]), **model.init_state(3).arrays}
    if model.metadata.lengths is not None:
        feeds[model.metadata.lengths.name] = np.full(3, 28, np.int64)
    names = [o.name for o in model.session.get_outputs()]
    public = model.session.run(names, feeds)
    for fast in (run_function(model.session), model._call):
        for got, want in zip(fast(names, feeds), public, strict=True):
            np.testing.assert_array_equal(got, want)

    class WrapperLaidOutOtherwise:  # an onnxruntime whose Python session has no compiled ``_sess``
        def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            return model.session.run(names, feeds)

    for got, want in zip(run_function(WrapperLaidOutOtherwise())(names, feeds), public, strict=True):  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, want)


def test_prefix_of_rows_and_stream_agree(model: ClassifierModel, mnist) -> None:
    image = mnist.test_images[3]
    stream = model.stream()
    for t in range(28):
        streamed = stream.feed(image[t])
        np.testing.assert_allclose(streamed, model.predict(image[None, : t + 1])[0], atol=1e-5)
    np.testing.assert_allclose(streamed, model.predict(image[None])[0], atol=1e-5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 27), max_size=8, unique=True), index=st.integers(0, 9999))
def test_random_chunkings_equal_whole_prefix(model: ClassifierModel, mnist, cuts: list[int], index: int) -> None:
    image = mnist.test_images[index]
    bounds = [0, *sorted(cuts), 28]
    stream = model.stream()
    for a, b in itertools.pairwise(bounds):
        got = stream.feed(image[a:b])
        np.testing.assert_allclose(got, model.predict(image[None, :b])[0], atol=1e-5)


def test_state_is_a_value_that_can_be_kept_and_restored(model: ClassifierModel, mnist) -> None:
    image = mnist.test_images[0]
    stream = model.stream()
    stream.feed(image[:10])
    saved = stream.state
    first = stream.feed(image[10:])
    stream.state = saved
    assert np.array_equal(stream.feed(image[10:]), first)
    branch = stream.copy()
    branch.reset()
    assert branch.state["steps"][0, 0] == 0 and stream.state["steps"][0, 0] == 28
    with pytest.raises(ValueError):
        saved["h"][0, 0, 0] = 1.0  # states are immutable


def test_functional_core_with_plain_arrays(model: ClassifierModel, mnist) -> None:
    x = model.preprocess(mnist.test_images[:2])
    _, state = model.step(x[:, :14], model.init_state(2))
    plain = {k: np.array(v) for k, v in state.items()}  # e.g. saved by the caller
    out2, _ = model.step(x[:, 14:], plain)
    np.testing.assert_allclose(out2["probs"], model.predict(mnist.test_images[:2]), atol=1e-5)
    assert isinstance(state, State) and state.batch_size == 2


BAD_ROWS = [
    (np.zeros((3, 28), bool), "ints or floats, got bool"),
    (np.zeros((3, 28), object), "ints or floats, got object"),
    (np.zeros((3, 27), np.uint8), "28 values"),
    (np.zeros((2, 3, 28), np.uint8), "one row"),
    (np.zeros((0, 28), np.uint8), "must not be empty"),
    (np.full((2, 28), np.nan, np.float32), "NaN"),
    (np.full((2, 28), np.inf), "NaN or infinity"),
    (np.full((2, 28), 1e39), "beyond float32's range"),
    ([[0] * 27], "(1, 27)"),
    ("row", "got str"),
]


@pytest.mark.parametrize(("rows", "message"), BAD_ROWS)
def test_bad_rows_leave_the_stream_unchanged(model: ClassifierModel, mnist, rows, message: str) -> None:
    stream = model.stream()
    stream.feed(mnist.test_images[0][:5])
    before = stream.state
    with pytest.raises(InputError, match=message):
        stream.feed(rows)
    assert stream.state is before


def test_bad_predict_input(model: ClassifierModel) -> None:
    with pytest.raises(InputError, match=r"\(N, T, 28\)"):
        model.predict(np.zeros((28, 28), np.uint8))
    with pytest.raises(InputError, match="at least one"):
        model.predict(np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(InputError, match="at least one"):
        model.predict(np.zeros((2, 0, 28), np.uint8))


def test_step_checks_dtype_shape_and_state(model: ClassifierModel, tiny_onnx: Path) -> None:
    state = model.init_state(2)
    with pytest.raises(InputError, match=r"x must be float32 of shape \(N, T, 28\), got float64 of shape"):
        model.step(np.zeros((2, 3, 28)), state)
    with pytest.raises(StateError, match="state holds batch 2, the input has batch 1"):
        model.step(np.zeros((1, 3, 28), np.float32), state)
    with pytest.raises(StateError, match="exactly the parts"):
        model.step(np.zeros((2, 3, 28), np.float32), {"h": np.zeros((1, 2, 24), np.float32)})
    parts = {k: np.array(v) for k, v in state.items()}
    with pytest.raises(StateError, match="state part h must be float32"):
        model.step(np.zeros((2, 3, 28), np.float32), {**parts, "h": parts["h"].astype(np.float64)})
    with pytest.raises(StateError, match=r"must be float32 of shape \(1, N, 24\), got float32 of shape \(1, 2, 25\)"):
        model.step(np.zeros((2, 3, 28), np.float32), {**parts, "h": np.zeros((1, 2, 25), np.float32)})
    with pytest.raises(StateError, match="NaN"):
        model.step(np.zeros((2, 3, 28), np.float32), {**parts, "c": np.full((1, 2, 24), np.nan, np.float32)})
    forged = State.of(model.metadata.model_id, {**parts, "h": np.zeros((1, 2, 5), np.float32)}, 2)
    with pytest.raises(StateError, match="state part h must be"):
        model.step(np.zeros((2, 3, 28), np.float32), forged)
    stream = model.stream()
    with pytest.raises(StateError):
        stream.state = State.of(model.metadata.model_id, {**parts, "h": np.zeros((1, 1, 5), np.float32)}, 1)
    other = State.of("someone-else", dict(state), 2)
    with pytest.raises(StateError, match="belongs to model someone-else"):
        model.step(np.zeros((2, 3, 28), np.float32), other)
    with pytest.raises(InputError, match="batch must be a positive int"):
        model.init_state(0)


def test_a_stream_refuses_concurrent_use(model: ClassifierModel, mnist) -> None:
    stream = model.stream()
    stream.feed(mnist.test_images[0][:1])  # the state is now made only when asked for
    stream._lock.acquire()  # another thread is inside feed()
    try:
        with pytest.raises(ConcurrentUseError):
            stream.feed(mnist.test_images[0][1:2])
        with pytest.raises(ConcurrentUseError):
            stream.state  # noqa: B018 -- reading it mid-feed could tear it
    finally:
        stream._lock.release()
    assert stream.state["steps"][0, 0] == 1
    stream.feed(mnist.test_images[0][1:2])


def test_one_model_shared_by_threads_gives_identical_results(model: ClassifierModel, mnist) -> None:
    images = mnist.test_images[:8]
    expected = [model.predict(img[None])[0] for img in images]
    results: dict[int, list[np.ndarray]] = {}

    def work(i: int) -> None:
        stream = model.stream()
        results[i] = [stream.feed(images[i % 8][t]) for t in range(28)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, outs in results.items():
        np.testing.assert_allclose(outs[-1], expected[i % 8], atol=1e-5)


def test_providers(tiny_onnx: Path, caplog: pytest.LogCaptureFixture) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ProviderError, match="CUDAExecutionProvider"):
            load(tiny_onnx, provider="cuda")
        with caplog.at_level("WARNING", logger="rnnedge"):
            assert load(tiny_onnx, provider="auto").provider == "cpu"
        assert "running on the CPU" in caplog.text
    with pytest.raises(ProviderError, match="'cpu', 'cuda' or 'auto'"):
        load(tiny_onnx, provider="tpu")
    with pytest.raises(ConfigError, match="threads must be a positive int"):
        load(tiny_onnx, threads=0)
    with pytest.raises(ConfigError, match="optimization must be one of"):
        load(tiny_onnx, optimization="max")
    optimized = tiny_onnx.parent / "optimized.onnx"
    load(tiny_onnx, optimization="basic", optimized_model_path=str(optimized)).close()
    assert optimized.stat().st_size > 0


def test_closed_model(tiny_onnx: Path, mnist) -> None:
    model = load(tiny_onnx, threads=1)
    stream = model.stream()
    model.close()
    with pytest.raises(ModelClosedError):
        stream.feed(mnist.test_images[0][:2])
