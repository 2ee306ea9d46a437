"""The I/O-binding path (CUDA's default) run on the CPU: same results as the host path, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnedge.runtime import ConfigError, LanguageModel, ModelFileError, TokenError, load


@pytest.fixture(scope="module")
def models(tiny_lm_onnx: Path):
    host = load(tiny_lm_onnx, threads=1)
    bound = load(tiny_lm_onnx, threads=1, state_on_device=True)
    assert isinstance(host, LanguageModel) and isinstance(bound, LanguageModel)
    assert not host.state_on_device and bound.state_on_device and bound.device == "cpu"
    yield host, bound
    host.close()
    bound.close()


def test_bound_stream_equals_host_stream(models: tuple[LanguageModel, LanguageModel]) -> None:
    host, bound = models
    a, b = host.stream(), bound.stream()
    rng = np.random.default_rng(1)
    for _ in range(10):
        ids = rng.integers(0, host.vocab_size, int(rng.integers(1, 4))).tolist()
        np.testing.assert_array_equal(a.feed(ids), b.feed(ids))
    assert b._state is None  # the state lives on the device until asked for
    for name in a.state:
        np.testing.assert_array_equal(a.state[name], b.state[name])
    assert b.top_k(3) == a.top_k(3)


def test_bound_stream_branches_restores_and_survives_bad_input(models: tuple[LanguageModel, LanguageModel]) -> None:
    host, bound = models
    stream = bound.stream(strict=True)
    stream.feed("the company said")
    saved = stream.state
    branch = stream.copy()
    with pytest.raises(TokenError):
        stream.feed("the qwertyuiop")
    np.testing.assert_array_equal(stream.feed("it"), branch.feed("it"))
    stream.state = saved  # restore: the next feed uploads it again
    reference = host.stream()
    reference.feed("the company said")
    np.testing.assert_array_equal(stream.feed("that"), reference.feed("that"))


def test_state_on_device_must_be_a_bool(tiny_lm_onnx: Path) -> None:
    with pytest.raises(ConfigError, match="state_on_device must be True, False or None"):
        load(tiny_lm_onnx, state_on_device="yes")  # type: ignore[arg-type]


def test_long_feeds_run_in_windows_on_the_device_path(models: tuple[LanguageModel, LanguageModel]) -> None:
    host, bound = models
    ids = np.random.default_rng(2).integers(0, host.vocab_size, 600).tolist()  # > 2 windows
    a, b = host.stream(), bound.stream()
    np.testing.assert_array_equal(a.feed(ids), b.feed(ids))
    for name in a.state:
        np.testing.assert_array_equal(a.state[name], b.state[name])


def test_only_language_models_keep_state_on_the_device(tiny_onnx: Path) -> None:
    with pytest.raises(ConfigError, match="only language models"):
        load(tiny_onnx, state_on_device=True)


def test_toggling_the_model_flag_does_not_touch_existing_streams(tiny_lm_onnx: Path) -> None:
    model = load(tiny_lm_onnx, state_on_device=True)
    stream = model.stream()
    stream.feed([1, 2])
    model.state_on_device = False  # later streams only
    reference = load(tiny_lm_onnx).stream()
    reference.feed([1, 2])
    np.testing.assert_array_equal(stream.feed([3]), reference.feed([3]))
    model.close()


def test_a_language_model_file_without_next_probs_is_refused(tiny_lm_onnx: Path, tmp_path: Path) -> None:
    """A file from before the graph computed next_probs: one format before the first release, so refused."""
    import dataclasses

    onnx = pytest.importorskip("onnx")

    from rnnedge.runtime.metadata import METADATA_KEY, ModelMetadata

    graph = onnx.load(str(tiny_lm_onnx))
    props = {p.key: p.value for p in graph.metadata_props}
    meta = ModelMetadata.from_json(props[METADATA_KEY])
    meta = dataclasses.replace(meta, outputs=tuple(o for o in meta.outputs if o.name != "next_probs"))
    kept = [o for o in graph.graph.output if o.name != "next_probs"]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    del graph.metadata_props[:]
    graph.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    old = tmp_path / "old.onnx"
    onnx.save(graph, str(old))
    with pytest.raises(ModelFileError, match=r"must have the output\(s\) \['next_probs'\] \(export it again\)"):
        load(old)
