"""deploy/run_replicas.sh: HAProxy in front of two rnnedge serve replicas; a session moves when its replica stops."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from serve_harness import Client

from rnnedge.runtime import LanguageModel

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "run_replicas.sh"


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


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (apt-get install -y haproxy)")
def test_a_session_moves_to_the_other_replica_by_its_token(tiny_lm_onnx: Path, lm: LanguageModel) -> None:
    front, p1, p2 = _free_ports(3)
    env = {**os.environ, "RNNEDGE": f"{sys.executable} -m rnnedge.cli.main"}
    script = subprocess.Popen(
        ["bash", str(SCRIPT), str(tiny_lm_onnx), str(front), str(p1), str(p2)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert script.stdout is not None
        line = script.stdout.readline()
        assert line.startswith(f"ready: ws://127.0.0.1:{front}"), line + script.stdout.read()
        url = f"ws://127.0.0.1:{front}"
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
    finally:
        script.send_signal(signal.SIGTERM)
        script.wait(30)
        if script.stdout is not None:
            script.stdout.close()
    alone = lm.stream()
    alone.feed("the stock market")
    assert np.array_equal(np.array(got["probs"], np.float32), alone.feed("fell"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_listening(p) for p in (front, p1, p2)):
        time.sleep(0.1)
    assert not any(_listening(p) for p in (front, p1, p2)), "the script left a process listening"


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
