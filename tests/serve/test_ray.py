"""The Ray Serve application on a local Ray instance (loopback, started and stopped here): same protocol, 2 replicas.

A session moves between replicas by its state token; killing a replica mid-session loses no word.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from serve_harness import Client

pytest.importorskip("ray.serve", reason="the Ray Serve app needs the ray extra: pip install 'rnnedge[ray]'")

import ray
from ray import serve

from rnnedge.runtime import LanguageModel
from rnnedge.serve import ServeConfig
from rnnedge.serve.client import ResumingClient
from rnnedge.serve.ray_app import app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_url(tiny_lm_onnx: Path) -> Iterator[str]:
    """A local Ray instance on 127.0.0.1 (2 CPUs, an 80 MB object store, no dashboard), the app with 2 replicas."""
    port = _free_port()
    ray.init(
        address="local",
        num_cpus=2,
        object_store_memory=80 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(app([tiny_lm_onnx], ServeConfig(batch_window_ms=5), replicas=2), route_prefix="/")
        yield f"ws://127.0.0.1:{port}/"
    finally:
        serve.shutdown()
        ray.shutdown()


def _get(url: str, path: str) -> str:
    with urllib.request.urlopen(url.replace("ws://", "http://").rstrip("/") + path, timeout=20) as r:
        return str(r.read().decode())


def test_the_same_protocol_as_rnnedge_serve(ray_url: str, lm: LanguageModel) -> None:
    with Client(ray_url) as c:
        opened = c.ok({"op": "open"})
        assert (opened["kind"], opened["vocab_size"]) == ("language_model", lm.vocab_size)
        assert c.request({"op": "open"})["error"] == "already_open"
        assert c.request("{not json")["error"] == "malformed"
        assert c.request({"op": "feed"})["error"] == "bad_request"
        got = c.ok({"op": "feed", "input": "the stock market", "probs": True, "top_k": 3})
        token = c.ok({"op": "state"})["token"]
        c.send(b"\x00")
        assert c.close_code()[0] == 1003
    alone = lm.stream()
    assert np.array_equal(np.array(got["probs"], np.float32), alone.feed("the stock market"))
    assert [tuple(p) for p in got["top_k"]] == alone.top_k(3)
    with Client(ray_url) as other:  # any replica takes the token
        other.ok({"op": "open", "token": token})
        after = other.ok({"op": "feed", "input": "fell", "probs": True})
    assert np.array_equal(np.array(after["probs"], np.float32), alone.feed("fell"))
    assert "rnnedge_serve_steps_total" in _get(ray_url, "/metrics")
    assert _get(ray_url, "/healthz") == "ok\n"


def test_killing_a_replica_mid_session_loses_no_word(ray_url: str, lm: LanguageModel) -> None:
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < 2 and time.monotonic() < deadline:
        pids.add(json.loads(_get(ray_url, "/replica"))["pid"])
    assert len(pids) == 2, f"expected 2 replicas, saw {pids}"
    sessions, words_each = 16, 30
    vocab = [w for w in lm.vocabulary if w not in ("<unk>", "<eos>")]
    plans = [[vocab[(5 * i + 11 * j) % len(vocab)] for j in range(words_each)] for i in range(sessions)]
    progress = [0] * sessions
    got: dict[int, list[list[float]]] = {i: [] for i in range(sessions)}
    clients: dict[int, ResumingClient] = {}
    errors: list[BaseException] = []
    killed = threading.Event()

    def converse(i: int) -> None:
        try:
            with ResumingClient(ray_url, reconnect_for=90) as c:
                clients[i] = c
                for j, word in enumerate(plans[i]):
                    got[i].append(c.feed(word, probs=True)["probs"])
                    progress[i] = j + 1
                    if not killed.is_set():
                        time.sleep(0.02)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=converse, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while min(progress) < 5 and time.monotonic() < deadline and not errors:
        time.sleep(0.05)
    assert min(progress) >= 5, f"sessions did not get going: {progress} {errors[:3]}"
    os.kill(min(pids), signal.SIGKILL)
    killed.set()
    for t in threads:
        t.join(240)
    assert not errors, errors[:3]
    moved = sum(c.resumed for c in clients.values())
    assert moved >= 1, "no session was on the killed replica"
    for i in range(sessions):
        alone = lm.stream()
        for word, probs in zip(plans[i], got[i], strict=True):
            assert np.array_equal(np.array(probs, np.float32), alone.feed(word)), f"session {i} differs at {word!r}"
    print(f"Ray replica killed: {moved} sessions moved, {sum(c.resent for c in clients.values())} words resent")
