"""rnnedge serve over real sockets: batched results equal feeding alone, the protocol, state tokens, metrics."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from serve_harness import Client, ServerProcess, running_server

from rnnedge.runtime import ClassifierModel, LanguageModel
from rnnedge.serve.sampling import Pcg32, sample


@pytest.fixture(scope="module")
def server(tiny_lm_onnx: Path, tiny_onnx: Path) -> Iterator[ServerProcess]:
    """One process serving the tiny language model and the tiny classifier; a 5 ms window."""
    models = [tiny_lm_onnx, tiny_onnx]
    with running_server(models, "--batch-window-ms", "5", "--max-feed-steps", "8") as s:
        yield s


def _probs(reply: dict) -> np.ndarray:
    return np.array(reply["probs"], dtype=np.float64).astype(np.float32)


def _open(client: Client, model: str, **kw: object) -> dict:
    return client.ok({"op": "open", "model": model, **kw})


def test_batched_results_are_bit_identical_to_feeding_each_stream_alone(
    server: ServerProcess, lm: LanguageModel, clf: ClassifierModel
) -> None:
    """12 word sessions and 6 row sessions at once, feeds of 1-3 steps, every probability equal to a lone Stream's."""
    rng = random.Random(0)
    words = [w for w in lm.vocabulary[:300] if w != "<unk>"]
    lm_plans = [
        [rng.choice([" ".join(rng.sample(words, rng.randint(1, 3))), [rng.randrange(lm.vocab_size)]]) for _ in range(8)]
        for _ in range(12)
    ]
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8, 28), dtype=np.uint8)
    clf_plans = [[img[t : t + 1].tolist() if t % 3 else img[t].tolist() for t in range(8)] for img in pixels]
    got: dict[tuple[str, int], list[dict]] = {}
    errors: list[BaseException] = []

    def session(kind: str, i: int, plan: list) -> None:
        try:
            with Client(server.url) as c:
                _open(c, "tiny-lm" if kind == "lm" else "tiny")
                got[kind, i] = [c.ok({"op": "feed", "input": x, "top_k": 4, "probs": True}) for x in plan]
        except BaseException as e:  # reported below
            errors.append(e)

    before = server.metric("rnnedge_serve_steps_total", model="tiny-lm")
    threads = [threading.Thread(target=session, args=("lm", i, p)) for i, p in enumerate(lm_plans)]
    threads += [threading.Thread(target=session, args=("clf", i, p)) for i, p in enumerate(clf_plans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for i, plan in enumerate(lm_plans):
        alone = lm.stream()
        for x, reply in zip(plan, got["lm", i], strict=True):
            expected = alone.feed(x)
            assert np.array_equal(_probs(reply), expected), f"session {i} differs from a lone stream"
            assert [tuple(p) for p in reply["top_k"]] == alone.top_k(4)
    for i, plan in enumerate(clf_plans):
        alone_clf = clf.stream()
        for x, reply in zip(plan, got["clf", i], strict=True):
            assert np.array_equal(_probs(reply), alone_clf.feed(np.array(x, np.uint8)))
    steps = server.metric("rnnedge_serve_steps_total", model="tiny-lm") - before
    assert steps < 12 * 8, f"{steps:.0f} steps for 96 feeds: nothing was batched"


def test_generate_sends_words_as_produced_and_continues_the_session(server: ServerProcess, lm: LanguageModel) -> None:
    with Client(server.url) as c:
        _open(c, "tiny-lm")
        c.send({"op": "generate", "prompt": "the company", "max_words": 6, "temperature": 0.8, "top_k": 20, "seed": 3})
        streamed = []
        while (reply := c.recv())["op"] == "word":
            streamed.append(reply["word"])
        assert reply["op"] == "generated" and reply["words"] == streamed and reply["stopped"] == "max_words"
        after = c.ok({"op": "feed", "input": "to", "probs": True})
    # The same draws from a lone stream: sampling on the stream's probabilities with the same seed.
    alone, rng, expected = lm.stream(), Pcg32(3), []
    probs = alone.feed("the company")
    for _ in range(6):
        choice = sample(probs, 0.8, 20, rng)
        expected.append(lm.vocabulary[choice])
        probs = alone.feed([choice])
    assert streamed == expected
    assert list(lm.generate("the company", 6, temperature=0.8, top_k=20, seed=3)) == expected  # the runtime's too
    assert np.array_equal(_probs(after), alone.feed("to"))


def test_a_state_token_continues_a_session_exactly(server: ServerProcess, lm: LanguageModel) -> None:
    with Client(server.url) as a, Client(server.url) as b:
        _open(a, "tiny-lm")
        a.ok({"op": "feed", "input": "the stock market"})
        token = a.ok({"op": "state"})["token"]
        _open(b, "tiny-lm", token=token)
        with pytest.raises(AssertionError, match="no prediction yet"):
            b.ok({"op": "top_k"})  # a token holds the state, not the last prediction
        ours, theirs = (c.ok({"op": "feed", "input": "fell", "probs": True}) for c in (a, b))
        assert ours["probs"] == theirs["probs"]
        closed = a.ok({"op": "close"})
        assert a.ok({"op": "open", "model": "tiny-lm", "token": closed["token"]})["op"] == "opened"
    alone = lm.stream()
    alone.feed("the stock market")
    assert np.array_equal(_probs(ours), alone.feed("fell"))


BAD_LM = [
    ("{not json", "malformed", "not JSON"),
    ("[1, 2]", "malformed", "a JSON object, got a JSON list"),
    ('{"op": "feed", "input": NaN}', "malformed", "NaN is not allowed"),
    ({"op": "dance"}, "bad_request", "op must be one of open, feed"),
    ({"op": "feed", "input": "the", "colour": 1}, "bad_request", "unknown field(s) 'colour'; allowed: input, top_k"),
    ({"op": "feed"}, "bad_request", "missing field 'input'"),
    ({"op": "feed", "input": 5}, "bad_request", "input must be a string or a list, got int 5"),
    ({"op": "feed", "input": "the", "top_k": True}, "bad_request", "top_k must be an int, got boolean"),
    ({"op": "feed", "input": "the", "top_k": 0}, "bad_request", "top_k must be an int >= 1, got 0"),
    ({"op": "feed", "input": "the", "top_k": 10**6}, "bad_request", "top_k must be an int in [1, 10000]"),
    ({"op": "feed", "input": "the", "id": [1]}, "bad_request", "id must be a string"),
    ({"op": "feed", "input": [99999]}, "input", "token ids must be in [0, 10000), got [99999]"),
    ({"op": "feed", "input": [1, "x"]}, "input", "token ids must be ints"),
    ({"op": "feed", "input": [1, True]}, "input", "token ids must be ints"),
    ({"op": "feed", "input": [[1, 2]]}, "input", "token ids must be a flat list of ints (T,), got a nested list"),
    ({"op": "feed", "input": []}, "input", "no token ids given"),
    ({"op": "feed", "input": ""}, "input", "no words given"),
    ({"op": "feed", "input": " ".join(["the"] * 9)}, "limit", "9 tokens in one feed, over the limit of 8"),
    ({"op": "generate", "max_words": 0}, "bad_request", "max_words must be an int >= 1"),
    ({"op": "generate", "max_words": 5000}, "limit", "max_words 5000 over the limit of 256"),
    ({"op": "generate", "max_words": 2, "temperature": 0}, "bad_request", "temperature must be a finite number > 0"),
    ({"op": "open"}, "already_open", "already holds a session"),
]


def test_bad_requests_get_clear_errors_and_leave_the_session_as_it_was(
    server: ServerProcess, lm: LanguageModel, tiny_onnx: Path
) -> None:
    with Client(server.url) as c:
        for op in ("feed", "state", "close", "top_k"):
            reply = c.request({"op": op, "input": "the"} if op == "feed" else {"op": op})
            assert reply["error"] == "no_session" and "send open first" in reply["message"]
        assert c.request({"op": "open"})["message"] == "open: name a model: this server serves tiny-lm, tiny"
        assert c.request({"op": "open", "model": "big"})["error"] == "unknown_model"
        _open(c, "tiny-lm", strict=True)
        c.ok({"op": "feed", "input": "the market"})
        token = c.ok({"op": "state"})["token"]
        for message, code, fragment in [*BAD_LM, ({"op": "feed", "input": "zzqxw"}, "input", "'zzqxw'")]:
            reply = c.request({**message, "id": 7} if isinstance(message, dict) and "id" not in message else message)
            assert reply["op"] == "error" and reply["error"] == code, (message, reply)
            assert fragment in reply["message"], (message, reply)
            if isinstance(message, dict) and "id" not in message:
                assert reply["id"] == 7
            assert c.ok({"op": "state"})["token"] == token, f"{message} changed the state"
        after = c.ok({"op": "feed", "input": "rose", "probs": True})
    alone = lm.stream()
    alone.feed("the market")
    assert np.array_equal(_probs(after), alone.feed("rose"))


BAD_ROWS = [
    ("a row", "input must be one row (a list of numbers)"),
    ([[1, 2], [3]], "rows must be lists of numbers, all of one length"),
    ([1] * 27, "each row must hold 28 numbers (the model's features), got a row of 27"),
    ([[0.5] * 29] * 2, "got 2 row(s) of 29"),
    ([1e39] * 28, "beyond float32's range"),
    ([True] * 28, "bool"),
    ([["x"] * 28], "<U1"),
    ([[0] * 28] * 9, "9 rows in one feed, over the limit of 8"),
]


def test_bad_rows_and_tokens_are_refused_and_change_nothing(
    server: ServerProcess, clf: ClassifierModel, lm: LanguageModel
) -> None:
    with Client(server.url) as c, Client(server.url) as other:
        _open(other, "tiny-lm")
        lm_token = other.ok({"op": "state"})["token"]
        _open(c, "tiny")
        c.ok({"op": "feed", "input": [7] * 28})
        token = c.ok({"op": "state"})["token"]
        for rows, fragment in BAD_ROWS:
            reply = c.request({"op": "feed", "input": rows})
            assert reply["error"] in ("input", "limit") and fragment in reply["message"], (rows, reply)
        assert c.request({"op": "generate", "max_words": 3})["error"] == "unsupported"
        assert c.ok({"op": "state"})["token"] == token
        last = c.ok({"op": "feed", "input": [[0.5] * 28, [0] * 28], "probs": True})
        c.ok({"op": "close"})
        for bad, fragment in [
            ("%%%", "not URL-safe base64"),
            ("AAAA", "not an rnnedge state token"),
            (token[:-8], "truncated"),
            (token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:], ""),  # a changed byte: still a state
            (lm_token, "belongs to model"),
        ]:
            reply = c.request({"op": "open", "model": "tiny", "token": bad})
            if fragment:
                assert reply["error"] == "state" and fragment in reply["message"], (bad, reply)
            else:  # without a key a finite changed value is a valid state (see docs/bad_input.md's limits)
                assert reply["op"] in ("opened", "error")
                if reply["op"] == "opened":
                    c.ok({"op": "close"})
    alone = clf.stream()
    alone.feed(np.full(28, 7, np.uint8))
    assert np.array_equal(_probs(last), alone.feed(np.array([[0.5] * 28, [0.0] * 28])))


def test_a_classifier_takes_raw_values(server: ServerProcess) -> None:
    """Raw values (ints beyond 255, floats beyond 1) go to a standardising file."""
    with Client(server.url) as c:
        _open(c, "tiny")
        c.ok({"op": "feed", "input": [[300] * 28, [2.5] * 28]})
        c.ok({"op": "close"})


def test_health_and_prometheus_metrics(server: ServerProcess) -> None:
    assert server.http("/healthz")[:3:2] == (200, "ok\n")
    status, content_type, text = server.http("/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=")
    for name in (
        'rnnedge_serve_sessions{model="tiny-lm"}',
        'rnnedge_serve_steps_total{model="tiny"}',
        'rnnedge_serve_batch_size_bucket{le="64.0",model="tiny-lm"}',
        'rnnedge_serve_step_seconds_bucket{le="0.001",model="tiny-lm"}',
        'rnnedge_serve_errors_total{code="input"}',
        "rnnedge_serve_connections",
    ):
        assert name in text, name
