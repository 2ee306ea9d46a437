"""The I/O-binding path (CUDA's default) run on the CPU: same results as the host path, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnedge.runtime import ConfigError, LanguageModel, TokenError, load


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
