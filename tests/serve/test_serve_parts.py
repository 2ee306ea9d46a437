"""The server's parts without a socket: top-k of many rows, state tokens, the configuration, the batching worker."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import serve_harness  # noqa: F401  (skips this module without the serve extra)

from rnnedge.runtime import ConfigError, LanguageModel, StateError, load
from rnnedge.serve import ServeConfig, decode_state, encode_state
from rnnedge.serve.batcher import ModelWorker
from rnnedge.serve.metrics import Metrics
from rnnedge.serve.outcomes import FeedOutcome
from rnnedge.serve.sampling import top_k_rows


def test_top_k_rows_orders_like_a_stable_sort_even_with_ties() -> None:
    rng = np.random.default_rng(0)
    probs = rng.random((16, 50)).astype(np.float32)
    probs[3, [4, 9, 17, 30]] = 2.0  # ties at the top
    probs[5, :] = 0.5  # a row of ties
    probs[7, [1, 2, 3]] = probs[7].max() + 1  # three tied above the rest
    probs[9, 2:] = -np.inf  # fewer finite values than k
    before = probs.copy()
    for k in (1, 2, 3, 5, 16, 17, 20, 50):
        expected = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        assert np.array_equal(top_k_rows(probs, k), expected), k
        assert np.array_equal(top_k_rows(probs, k, in_place=True), expected), k
        assert np.array_equal(probs, before), k  # in place, then put back: the caller's array is unchanged


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _with_header(raw: bytes, header: object, body: bytes | None = None) -> str:
    (n,) = struct.unpack("<I", raw[5:9])
    h = json.dumps(header).encode()
    return _token(raw[:5] + struct.pack("<I", len(h)) + h + (raw[9 + n :] if body is None else body))


def test_state_tokens_round_trip_and_refuse_what_is_not_a_state(lm: LanguageModel) -> None:
    stream = lm.stream()
    stream.feed("the stock market")
    token = encode_state(stream.state)
    back = decode_state(token, lm)
    assert all(np.array_equal(back[n], stream.state[n]) for n in stream.state)
    raw = _raw(token)
    (n,) = struct.unpack("<I", raw[5:9])
    header = json.loads(raw[9 : 9 + n])
    nan_body = np.full(len(raw) - 9 - n, 0xFF, np.uint8).tobytes()  # all-ones bytes: float32 NaN
    cases = [
        (123, "a non-empty string"),
        ("", "a non-empty string"),
        ("ab$c", "not URL-safe base64"),
        (_token(b"RNS1\x07\x00\x00\x00\x00"), "unknown flags 7"),
        (_token(raw[:5] + struct.pack("<I", 10**6) + raw[9:]), "does not fit"),
        (_token(raw[:9] + b"}" + raw[10:]), "not JSON"),
        (_with_header(raw, {**header, "extra": 1}), "header must be"),
        (_with_header(raw, {**header, "parts": [["h", "object", [1]]]}), "known dtype"),
        (_with_header(raw, {**header, "parts": [["h", "float32", [2, -1, 32]]]}), "bad shape"),
        (_with_header(raw, header, raw[9 + n :] + b"\x00"), "bytes after its arrays"),
        (_with_header(raw, header, raw[9 + n : -4]), "truncated"),
        (_with_header(raw, {**header, "model_id": "someone-else"}), "belongs to model 'someone-else'"),
        (_with_header(raw, header, nan_body), "NaN or infinity"),
        (_with_header(raw, {**header, "parts": header["parts"][:1]}, raw[9 + n : 9 + n + 4 * 32]), "exactly the parts"),
        (encode_state(lm.init_state(2)), "state holds batch 2"),
    ]
    for bad, fragment in cases:
        with pytest.raises(StateError) as info:
            decode_state(bad, lm)
        assert fragment in str(info.value), (fragment, str(info.value))


def test_signed_tokens_refuse_any_changed_byte(lm: LanguageModel) -> None:
    key = b"k" * 32
    token = encode_state(lm.init_state(1), key)
    raw = bytearray(_raw(token))
    for i in (0, 4, 12, len(raw) // 2, len(raw) - 1):
        changed = bytearray(raw)
        changed[i] ^= 1
        with pytest.raises(StateError):
            decode_state(_token(bytes(changed)), lm, key)
    assert decode_state(token, lm, key).model_id == lm.metadata.model_id
    assert decode_state(token, lm).model_id == lm.metadata.model_id  # a server without a key ignores the MAC


def test_settings_out_of_range_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"max_batch=0 \(expected an int >= 1\); port=70000"):
        ServeConfig(max_batch=0, port=70000)
    with pytest.raises(ConfigError, match="batch_window_ms=nan"):
        ServeConfig(batch_window_ms=float("nan"))
    with pytest.raises(ConfigError, match=r"half_batch_from=-1 \(expected an int >= 0\)"):
        ServeConfig(half_batch_from=-1)
    with pytest.raises(ConfigError, match="token_key: expected at least 16 bytes"):
        ServeConfig(token_key=b"short")


def test_worker_steps_half_the_sessions_at_once_and_keeps_each_exact(tiny_lm_onnx: Path, lm: LanguageModel) -> None:
    """From ``half_from`` sessions on, half of them pending start a step: with a one-minute window, a step
    that waited for every session would time out. Fixed halves (whose states stay stacked) and halves
    drawn anew each round (states gathered), fed in any order: every session gets a lone stream's results."""
    n, rounds = ServeConfig().half_batch_from + 8, 6
    rng = np.random.default_rng(0)
    plans = rng.integers(0, lm.vocab_size, size=(n, rounds))
    half = (n + 1) // 2

    async def serve_rounds() -> list[list[FeedOutcome]]:
        with load(tiny_lm_onnx, threads=1) as model:
            metrics = Metrics()
            loop = asyncio.get_running_loop()
            worker = ModelWorker("m", model, loop, metrics, max_batch=256, window=60.0, half_from=n - 8)
            got: list[list[FeedOutcome]] = [[] for _ in range(n)]
            try:
                for i in range(n):
                    await worker.add(f"s{i}", None)
                for r in range(rounds):
                    order = np.arange(n) if r < 3 else rng.permutation(n)
                    for members in (order[:half], order[half:]):
                        arrival = rng.permutation(members)
                        futures = [worker.feed(f"s{i}", np.array([plans[i, r]], np.int64), 1, 3) for i in arrival]
                        outcomes = await asyncio.wait_for(asyncio.gather(*futures), 30)
                        for i, outcome in zip(arrival, outcomes, strict=True):
                            got[i].append(outcome)
            finally:
                worker.stop(5)
            assert metrics.registry.get_sample_value("rnnedge_serve_steps_total", {"model": "m"}) == 2 * rounds
            return got

    got = asyncio.run(serve_rounds())
    for i in range(n):
        alone = lm.stream()
        for r in range(rounds):
            expected = alone.feed(np.array([plans[i, r]], np.int64))
            assert np.array_equal(got[i][r].probs, expected), (i, r)
            assert [tuple(p) for p in got[i][r].top_k] == alone.top_k(3), (i, r)
