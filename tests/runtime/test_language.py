"""The language-model runtime: perplexity equal to PyTorch, streams, generation, bad input."""

from __future__ import annotations

import copy
import gc
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from rnnedge.errors import InputError, StateError, TokenError
from rnnedge.runtime import LanguageModel, load


@pytest.fixture(scope="module")
def valid_text(ptb_data: Path) -> str:
    return "\n".join((ptb_data / "ptb" / "ptb.valid.txt").read_text().splitlines()[:120]) + "\n"


def test_perplexity_equals_pytorch(
    lm: LanguageModel, valid_text: str, tiny_lm_checkpoint: Path, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")

    from rnnedge.data.ptb import PTBCorpus, read_words
    from rnnedge.training.checkpoint import load_checkpoint
    from rnnedge.training.train_lm import build_language_model, evaluate_perplexity

    ckpt = load_checkpoint(tiny_lm_checkpoint)
    vocab = tuple(ckpt["vocabulary"])
    empty = np.zeros(0, np.int64)
    ids = PTBCorpus(empty, empty, empty, vocab).encode(read_words(valid_text.splitlines()))
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        want = evaluate_perplexity(build_language_model(ckpt), ids, 1, 35)
    finally:
        torch.set_num_threads(saved)
    got = lm.perplexity(valid_text, window=64)
    assert got == pytest.approx(want, rel=1e-3)
    file = tmp_path / "valid.txt"
    file.write_text(valid_text)
    seen: list[tuple[int, int]] = []
    assert lm.perplexity(file, window=200, progress=lambda d, t: seen.append((d, t))) == pytest.approx(got, rel=1e-6)
    assert seen[-1] == (len(ids) - 1, len(ids) - 1)


def test_chunked_stream_equals_one_feed(lm: LanguageModel) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, lm.vocab_size, 60)
    whole = lm.stream()
    want = whole.feed(ids)
    for _ in range(3):
        s = lm.stream()
        start = 0
        while start < len(ids):
            size = int(rng.integers(1, 9))
            got = s.feed(list(ids[start : start + size]))
            start += size
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(s.state["h"], whole.state["h"], rtol=1e-4, atol=1e-6)
    assert want.shape == (lm.vocab_size,) and want.dtype == np.float32
    assert float(want.sum()) == pytest.approx(1.0, abs=1e-4)


def test_words_text_and_ids_feed_alike(lm: LanguageModel) -> None:
    text = "the company said it expects"
    ids = lm.encode(text)
    assert lm.decode(ids) == text.split()
    a, b, c = lm.stream().feed(text), lm.stream().feed(text.split()), lm.stream().feed(ids)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_top_k_and_branching(lm: LanguageModel) -> None:
    s = lm.stream()
    with pytest.raises(InputError, match="no prediction yet"):
        s.top_k(3)
    probs = s.feed("the stock")
    top = s.top_k(5)
    assert len(top) == 5 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert top[0][0] == lm.vocabulary[int(np.argmax(probs))] and top[0][1] == pytest.approx(float(probs.max()))
    for bad in (0, -1, lm.vocab_size + 1, 2.5, True):
        with pytest.raises(InputError):
            s.top_k(bad)
    branch = s.copy()
    branch.feed("market")
    np.testing.assert_array_equal(s.last, probs)
    np.testing.assert_array_equal(s.copy().feed("market"), branch.last)


def test_a_shallow_copy_is_an_independent_branch(lm: LanguageModel) -> None:
    s = lm.stream()
    s.feed("the stock")
    twin = copy.copy(s)
    twin.feed("market rose")
    np.testing.assert_array_equal(s.feed("market"), lm.stream().feed("the stock market"))


def test_a_stream_keeps_no_reference_to_what_was_fed(lm: LanguageModel) -> None:
    ids = np.arange(300, dtype=np.int64) % lm.vocab_size  # also a windowed feed: longer than STREAM_WINDOW
    fed = weakref.ref(ids)
    s = lm.stream()
    s.feed(ids)
    del ids
    gc.collect()
    assert fed() is None


def test_stream_outputs_are_read_only(lm: LanguageModel) -> None:
    assert lm.stream_outputs == ("next_probs",)
    with pytest.raises(AttributeError):
        lm.stream_outputs = ("logits",)  # type: ignore[misc]


def test_generation_is_deterministic_for_a_seed(lm: LanguageModel) -> None:
    a = list(lm.generate("the company", 15, seed=7))
    b = list(lm.generate("the company", 15, seed=7))
    assert a == b and len(a) == 15 and all(w in lm.vocabulary for w in a)
    assert list(lm.generate("the company", 15, seed=8)) != a
    greedy = list(lm.generate("the", 5, top_k=1, seed=1))
    s = lm.stream()
    p = s.feed("the")
    for word in greedy:
        assert word == lm.vocabulary[int(np.argmax(p))]
        p = s.feed(word)
    assert list(lm.generate(None, 3, temperature=0.5, seed=0)) == list(lm.generate(None, 3, temperature=0.5, seed=0))
    for kwargs in ({"temperature": 0}, {"temperature": float("nan")}, {"top_k": 0}, {"max_words": -1}):
        with pytest.raises(InputError):
            lm.generate("the", **{"max_words": 3, **kwargs})


def test_unknown_words(lm: LanguageModel) -> None:
    ids = lm.encode("the zzqxw company")
    assert ids[1] == lm.unk_id
    with pytest.raises(TokenError, match="zzqxw"):
        lm.encode("the zzqxw company", strict=True)
    with pytest.raises(TokenError):
        lm.stream(strict=True).feed("zzqxw")


@pytest.mark.parametrize(
    "bad, error",
    [
        ([-1], TokenError),
        ([10_000], TokenError),
        (np.array([3, 10_000]), TokenError),
        (np.array([1.0, 2.0]), InputError),
        ([True, False], InputError),
        ([1, "the"], InputError),
        (np.zeros((2, 3), np.int64), InputError),
        ("", InputError),
        ([], InputError),
        (np.array([], np.int64), InputError),
        (None, InputError),
    ],
)
def test_bad_input_leaves_the_stream_unchanged(lm: LanguageModel, bad, error) -> None:
    s = lm.stream()
    s.feed("the market")
    before_state, before_last = s.state, s.last
    with pytest.raises(error):
        s.feed(bad)
    assert s.state is before_state and s.last is before_last


def test_bad_ids_through_the_core_and_bad_state(lm: LanguageModel) -> None:
    with pytest.raises(TokenError):
        lm.step(np.array([[1, -5]], np.int64), lm.init_state(1))
    with pytest.raises(InputError):
        lm.step(np.array([[1, 2]], np.int32), lm.init_state(1))
    s = lm.stream()
    with pytest.raises(StateError):
        s.state = {"h": np.zeros((1, 1, 32), np.float32)}
    with pytest.raises(TokenError):
        lm.decode([lm.vocab_size])


def test_language_runtime_imports_no_torch() -> None:
    code = "import sys, rnnedge.runtime.language; print('torch' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_a_path_given_as_str_is_not_scored_as_text(tiny_lm_onnx: Path, ptb_data: Path) -> None:
    with pytest.raises(InputError, match=r"pass pathlib\.Path"):
        load(tiny_lm_onnx).perplexity(str(ptb_data / "ptb" / "ptb.valid.txt"))
