"""deploy/run_replicas.sh: HAProxy in front of two rnnedge serve replicas; a session moves when its replica stops."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from serve_harness import Client

from rnnedge.runtime import LanguageModel
from rnnedge.serve.client import ResumingClient

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "run_replicas.sh"
NEEDS_HAPROXY = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="haproxy is not installed (apt-get install -y haproxy)"
)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _replica_pid(port: int) -> int:
    """The pid of the process listening on 127.0.0.1:port (from /proc: no lsof needed)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
            inode = fields[9]
    assert inode is not None, f"nothing listens on {port}"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no process holds the socket of port {port}")


@contextmanager
def _replicas(model: Path) -> Iterator[tuple[str, int, int]]:
    """deploy/run_replicas.sh on three free ports: (front URL, replica port 1, replica port 2)."""
    front, p1, p2 = _free_ports(3)
    env = {**os.environ, "RNNEDGE": f"{sys.executable} -m rnnedge.cli.main"}
    script = subprocess.Popen(
        ["bash", str(SCRIPT), str(model), str(front), str(p1), str(p2)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert script.stdout is not None
        line = script.stdout.readline()
        assert line.startswith(f"ready: ws://127.0.0.1:{front}"), line + script.stdout.read()
        yield f"ws://127.0.0.1:{front}", p1, p2
    finally:
        script.send_signal(signal.SIGTERM)
        script.wait(30)
        if script.stdout is not None:
            script.stdout.close()


@NEEDS_HAPROXY
def test_a_session_moves_to_the_other_replica_by_its_token(tiny_lm_onnx: Path, lm: LanguageModel) -> None:
    with _replicas(tiny_lm_onnx) as (url, p1, p2):
        with Client(url) as client:
            client.ok({"op": "open"})
            client.ok({"op": "feed", "input": "the stock market"})
            holder, other = (p1, p2) if _sessions(p1) == 1 else (p2, p1)
            assert (_sessions(holder), _sessions(other)) == (1, 0)
            # Stop the replica holding the session: it sends the state token, closes with 1001, stops.
            os.kill(_replica_pid(holder), signal.SIGTERM)
            goodbye = client.recv()
            assert goodbye["op"] == "shutdown" and client.close_code()[0] == 1001
        with Client(url) as moved:  # through HAProxy again: only the other replica is left
            moved.ok({"op": "open", "token": goodbye["token"]})
            got = moved.ok({"op": "feed", "input": "fell", "probs": True})
            assert _sessions(other) == 1
    alone = lm.stream()
    alone.feed("the stock market")
    assert np.array_equal(np.array(got["probs"], np.float32), alone.feed("fell"))
    ports = (int(url.rsplit(":", 1)[1]), p1, p2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_listening(p) for p in ports):
        time.sleep(0.1)
    assert not any(_listening(p) for p in ports), "the script left a process listening"


def _sessions(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("rnnedge_serve_sessions{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def _listening(port: int) -> bool:
    return any(
        f[1].endswith(f":{port:04X}") and f[3] == "0A"
        for f in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
    )


@NEEDS_HAPROXY
def test_killing_a_replica_loses_no_word_and_every_session_continues_exactly(
    tiny_lm_onnx: Path, lm: LanguageModel
) -> None:
    """32 sessions converse through HAProxy; kill -9 one replica; each client resumes from its last token.

    Only the words in flight when the replica died were unanswered; the client sends them again, so
    no word is lost, and every session's probabilities equal an uninterrupted stream's, bit for bit.
    """
    sessions, words_each = 32, 60
    vocab = [w for w in lm.vocabulary if w not in ("<unk>", "<eos>")]
    plans = [[vocab[(7 * i + 13 * j) % len(vocab)] for j in range(words_each)] for i in range(sessions)]
    progress = [0] * sessions
    got: dict[int, list[list[float]]] = {}
    clients: dict[int, ResumingClient] = {}
    errors: list[BaseException] = []
    killed = threading.Event()

    def converse(i: int, url: str) -> None:
        try:
            with ResumingClient(url, reconnect_for=60) as c:
                clients[i] = c
                got[i] = []
                for j, word in enumerate(plans[i]):
                    if j == words_each - 1:
                        killed.wait(120)  # no session ends before the kill: each open one has a word to go
                    got[i].append(c.feed(word, probs=True)["probs"])
                    progress[i] = j + 1
                    if not killed.is_set():
                        time.sleep(0.01)  # keep conversing until the kill, then finish at full speed
        except BaseException as e:  # reported below
            errors.append(e)

    with _replicas(tiny_lm_onnx) as (url, p1, p2):
        threads = [threading.Thread(target=converse, args=(i, url)) for i in range(sessions)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while min(progress) < 10 and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
        if min(progress) < 10:
            killed.set()  # let the sessions end
            pytest.fail(f"sessions did not get going: {progress} {errors}")
        before = {p: _sessions(p) for p in (p1, p2)}
        victim = max(before, key=lambda p: before[p])
        os.kill(_replica_pid(victim), signal.SIGKILL)
        killed.set()
        for t in threads:
            t.join(180)
        assert not errors, errors[:3]
        assert all(len(got[i]) == words_each for i in range(sessions))
    moved = sum(c.resumed for c in clients.values())
    resent = sum(c.resent for c in clients.values())
    assert moved == before[victim] > 0, (moved, before)  # every session of the dead replica, and no other
    assert resent <= moved  # at most the one word each had in flight was sent again; none was lost
    print(f"kill -9: {moved} sessions moved, {resent} words in flight sent again, 0 lost")
    for i in range(sessions):
        alone = lm.stream()
        for word, probs in zip(plans[i], got[i], strict=True):
            assert np.array_equal(np.array(probs, np.float32), alone.feed(word)), f"session {i} differs at {word!r}"
