"""A tagger exported from a user's own module, served by a real ``rnnedge serve`` over a real socket.

Every feed of ``T`` frames answers ``T`` distributions, each the module's own ``forward``'s for that
frame (within 1e-4): whole sequences, chunked streams, and sessions batched together; an over-long
feed and rows of the wrong width get an ``input`` error and leave the session as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from serve_harness import Client, ServerProcess, running_server

torch = pytest.importorskip("torch", reason="export needs the train extra")

from own_modules import VoiceActivityTagger, data_dir, train_briefly, vowels  # noqa: E402

from rnnedge.export import export_module  # noqa: E402
from rnnedge.runtime.model import STREAM_WINDOW  # noqa: E402

ATOL = 1e-4
LABELS = ["low", "mid", "high"]
CHUNKS = (1, 4, 2, 7, 3)


@pytest.fixture(scope="module")
def module() -> torch.nn.Module:
    if data_dir() is None:
        pytest.skip("JapaneseVowels not found: set RNNEDGE_DATA")
    sequences, labels = vowels()
    torch.manual_seed(1)
    return train_briefly(VoiceActivityTagger(), "tagger", sequences=sequences, labels=labels)


@pytest.fixture(scope="module")
def server(module: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    path = export_module(module, tmp_path_factory.mktemp("tagger") / "vad.onnx", task="tagger", labels=LABELS).path
    with running_server([path], "--batch-window-ms", "20") as s:
        yield s


@torch.no_grad()
def _own(module: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """The module's own per-frame probabilities ``(T, C)`` for one sequence ``(T, C_in)``."""
    return torch.softmax(module(torch.from_numpy(frames)[None]), -1)[0].numpy()


def _check(reply: dict, want: np.ndarray, k: int) -> None:
    """``reply`` has one probability row and one top-k list per frame, as ``want`` ``(T, C)`` says."""
    got = np.array(reply["probs"])
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    assert len(reply["top_k"]) == len(want)
    for pairs, row in zip(reply["top_k"], want, strict=True):
        assert [label for label, _ in pairs] == [LABELS[i] for i in np.argsort(-row, kind="stable")[:k]]


def _stream(c: Client, module: torch.nn.Module, frames: np.ndarray) -> None:
    """Feed ``frames`` in CHUNKS; each reply is the module's own on the frames just fed (from all so far)."""
    start = 0
    for size in CHUNKS:
        piece = frames[start : start + size]
        reply = c.ok({"op": "feed", "input": piece.tolist(), "probs": True, "top_k": 2})
        start += len(piece)
        _check(reply, _own(module, frames[:start])[start - len(piece) :], 2)


def test_whole_sequences_and_chunked_streams_give_the_modules_own_per_frame_outputs(
    server: ServerProcess, module: torch.nn.Module
) -> None:
    sequences = [s for s in vowels()[0] if len(s) >= sum(CHUNKS)]
    with Client(server.url) as c:
        opened = c.ok({"op": "open"})
        assert opened["kind"] == "tagger" and opened["labels"] == LABELS
        reply = c.ok({"op": "feed", "input": sequences[0].tolist(), "probs": True, "top_k": 3})
        _check(reply, _own(module, sequences[0]), 3)
        last = c.ok({"op": "top_k", "k": 3, "probs": True})  # the last frame's
        assert last["top_k"] == reply["top_k"][-1] and last["probs"] == reply["probs"][-1]
        c.ok({"op": "close"})
        c.ok({"op": "open"})
        _stream(c, module, sequences[1])


def test_concurrent_sessions_are_batched_and_each_gets_its_own_frames(
    server: ServerProcess, module: torch.nn.Module
) -> None:
    sequences = [s for s in vowels()[0] if len(s) >= sum(CHUNKS)][:8]  # every feed of the plan non-empty
    errors: list[BaseException] = []

    def session(frames: np.ndarray) -> None:
        try:
            with Client(server.url) as c:
                c.ok({"op": "open"})
                _stream(c, module, frames)
        except BaseException as e:  # reported below
            errors.append(e)

    before = server.metric("rnnedge_serve_steps_total", model="vad")
    threads = [threading.Thread(target=session, args=(s,)) for s in sequences]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    steps = server.metric("rnnedge_serve_steps_total", model="vad") - before
    assert steps < len(sequences) * len(CHUNKS), f"{steps:.0f} steps for {len(sequences) * len(CHUNKS)} feeds"


def test_an_over_long_feed_or_rows_of_another_width_are_refused_and_change_nothing(
    server: ServerProcess, module: torch.nn.Module
) -> None:
    frames = vowels()[0][2]
    with Client(server.url) as c:
        c.ok({"op": "open"})
        c.ok({"op": "feed", "input": frames[:3].tolist()})
        token = c.ok({"op": "state"})["token"]
        for bad, fragment in [
            (np.zeros((STREAM_WINDOW + 1, 12)).tolist(), f"at most {STREAM_WINDOW} frames per feed"),
            (np.zeros((2, 11)).tolist(), "each row must hold 12 numbers (the model's features), got 2 row(s) of 11"),
            ([[0.5] * 12, [0.5] * 11], "one length"),
        ]:
            reply = c.request({"op": "feed", "input": bad, "id": 7})
            assert reply["op"] == "error" and reply["error"] == "input" and reply["id"] == 7, reply
            assert fragment in reply["message"], reply
            assert c.ok({"op": "state"})["token"] == token
        reply = c.ok({"op": "feed", "input": frames[3:9].tolist(), "probs": True})  # goes on as if nothing came
        _check(reply, _own(module, frames[:9])[3:], len(LABELS))  # the default k: min(5, classes)
