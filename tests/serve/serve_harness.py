"""Real `rnnedge serve` processes on free loopback ports, and a small synchronous client for tests."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("websockets", reason="rnnedge serve needs the serve extra: pip install 'rnnedge[serve]'")
pytest.importorskip("prometheus_client", reason="rnnedge serve needs the serve extra: pip install 'rnnedge[serve]'")

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

__all__ = ["PLAIN", "Client", "ConnectionClosed", "ServerProcess", "running_server"]

PLAIN = {"RNNEDGE_SERVE_PLAIN": "1"}  # a server without uvloop and orjson, when the serve-fast extra is installed


class ServerProcess:
    """``python -m rnnedge.cli.main serve MODELS --port 0 ...`` with its stderr collected."""

    def __init__(
        self,
        models: Sequence[Path],
        *args: str,
        env: dict[str, str] | None = None,
        files: tuple[int, int] | None = None,
    ) -> None:
        """``files``: the (soft, hard) limit on open files the server starts with (default: this process's)."""
        cmd = [sys.executable, "-m", "rnnedge.cli.main", "serve", *map(str, models), "--port", "0", *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        limit = None if files is None else (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, files))
        self.proc = subprocess.Popen(
            cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, preexec_fn=limit
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(60) or not self.port:
            self.proc.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if "listening on ws://" in line:
                self.port = int(line.split("ws://", 1)[1].split(":", 1)[1].split(" ", 1)[0])
                self._ready.set()
        self._ready.set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def http(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) of GET path."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.headers["Content-Type"], r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers["Content-Type"], e.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value from /metrics (0 when absent)."""
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in self.http("/metrics")[2].splitlines():
            if line.startswith(want + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


@contextmanager
def running_server(
    models: Sequence[Path], *args: str, env: dict[str, str] | None = None, files: tuple[int, int] | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(models, *args, env=env, files=files)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


class Client:
    """One connection: ``request`` sends a message and returns the next reply (skipping nothing)."""

    def __init__(self, url: str, **kw: Any) -> None:
        # websockets 17 wants connect() entered as a context manager; 13-16 return the connection itself
        self._connect = connect(url, max_size=2**24, open_timeout=20, **kw)
        self.ws: ClientConnection = self._connect.__enter__()

    def send(self, message: dict[str, Any] | str | bytes) -> None:
        self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def recv(self, timeout: float = 20) -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(self.ws.recv(timeout))
        return reply

    def request(self, message: dict[str, Any] | str, timeout: float = 20) -> dict[str, Any]:
        self.send(message)
        return self.recv(timeout)

    def ok(self, message: dict[str, Any]) -> dict[str, Any]:
        reply = self.request(message)
        assert reply["op"] != "error", reply
        return reply

    def close_code(self, timeout: float = 20) -> tuple[int | None, str | None]:
        """Wait for the server to close; its (code, reason)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.ws.recv(max(deadline - time.monotonic(), 0.01))
        except ConnectionClosed as e:
            return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, None)
        raise AssertionError("the server did not close the connection")

    def close(self) -> None:
        self._connect.__exit__(None, None, None)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
