"""Hostile and unlucky clients: limits, close codes, a client vanishing mid-step, SIGTERM, two replicas."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from serve_harness import PLAIN, Client, ConnectionClosed, running_server

from rnnedge.runtime import LanguageModel
from rnnedge.serve import decode_state, encode_state

# Each WebSocket library the server can run on: websockets (the plain path, also without uvloop and orjson),
# and picows with the serve-fast extra (websockets again where that extra is not installed).
TRANSPORTS = pytest.mark.parametrize("env", [PLAIN, {}], ids=["plain", "fast"])


@TRANSPORTS
def test_limits_close_with_clear_codes_and_spare_the_other_sessions(
    tiny_lm_onnx: Path, lm: LanguageModel, env: dict[str, str]
) -> None:
    """Max sessions (1013), oversized message (1009), binary frame (1003), idle (4001), a client gone mid-step."""
    args = ("--max-sessions", "3", "--max-message-bytes", "2048", "--idle-timeout", "3", "--batch-window-ms", "20")
    with running_server([tiny_lm_onnx], *args, env=env) as server:
        with Client(server.url) as steady:
            steady.ok({"op": "open"})
            steady.ok({"op": "feed", "input": "the"})
            # A client that disappears while its feed is in a step (the 20 ms window holds the step open).
            vanishing = Client(server.url)
            vanishing.ok({"op": "open"})
            vanishing.send({"op": "feed", "input": "market"})
            vanishing.ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            vanishing.ws.socket.close()  # a TCP reset, no closing handshake
            # Too big, binary, full.
            with Client(server.url) as big:
                big.send({"op": "feed", "input": "the " * 1000})
                assert big.close_code()[0] == 1009
            with Client(server.url) as binary:
                binary.send(b"\x00\x01")
                assert binary.close_code() == (1003, "binary frames are not part of the protocol: send JSON text")
            steady.ok({"op": "state"})  # the steady session keeps talking: only silent ones idle out
            others = [Client(server.url) for _ in range(2)]
            deadline = time.monotonic() + 10
            while server.metric("rnnedge_serve_connections") != 3 and time.monotonic() < deadline:
                time.sleep(0.05)  # the vanished client's connection is noticed and its session removed
            with Client(server.url) as extra:
                code, reason = extra.close_code()
                assert code == 1013 and "server full: 3 sessions open (--max-sessions)" in str(reason)
            for o in others:
                o.close()
            # Idle: nothing sent for 3 s on one connection while the steady one talks.
            with Client(server.url) as idle:
                t0 = time.monotonic()
                while True:
                    steady.ok({"op": "state"})
                    try:
                        idle.ws.recv(0.3)
                    except TimeoutError:
                        continue
                    except ConnectionClosed as e:
                        assert e.rcvd is not None and (e.rcvd.code, e.rcvd.reason) == (
                            4001,
                            "idle for 3 s (--idle-timeout)",
                        )
                        break
                assert 2.5 < time.monotonic() - t0 < 15
            # The steady session was untouched by all of it.
            got = steady.ok({"op": "feed", "input": "stock", "probs": True})
        alone = lm.stream()
        alone.feed("the")
        assert np.array_equal(np.array(got["probs"], np.float32), alone.feed("stock"))
        assert server.metric("rnnedge_serve_closes_total", code="1013") == 1
        assert server.metric("rnnedge_serve_closes_total", code="4001") >= 1
        assert server.metric("rnnedge_serve_closes_total", code="1009") == 1  # closed by the library: was not counted
        assert server.metric("rnnedge_serve_closes_total", code="1003") == 1
        # Per-request server time, by op: two feeds of the steady session at least, and its state requests.
        assert server.metric("rnnedge_serve_request_seconds_count", op="feed") >= 2
        assert server.metric("rnnedge_serve_request_seconds_count", op="state") >= 2
        assert server.metric("rnnedge_serve_request_seconds_sum", op="feed") > 0
        assert server.stop() == 0


@TRANSPORTS
def test_fragments_text_and_pipelined_requests_read_alike_on_either_library(
    tiny_lm_onnx: Path, lm: LanguageModel, env: dict[str, str]
) -> None:
    """A fragmented message is one request (1009 once its fragments pass the limit); text that is not UTF-8
    closes with 1007; a ping is answered; 40 requests sent before reading any reply are answered in order."""
    with running_server([tiny_lm_onnx], "--max-message-bytes", "2048", env=env) as server:
        with Client(server.url) as c:
            c.ok({"op": "open"})
            c.ws.send(['{"op": "feed", ', '"input": "the', ' stock", "probs": true}'])  # three frames, one message
            got = c.recv()
            c.ws.ping(b"x").wait(10)
            words = ["the", "market", "closed", "higher", "after", "the", "stock", "rose"] * 5
            for word in words:
                c.send({"op": "feed", "input": word, "id": word})
            replies = [c.recv() for _ in words]
        alone = lm.stream()
        assert np.array_equal(np.array(got["probs"], np.float32), alone.feed(["the", "stock"]))
        assert [r["id"] for r in replies] == words and all(r["op"] == "result" for r in replies)
        with Client(server.url) as big:
            big.ws.send(["x" * 1500, "x" * 1500])  # each fragment under the limit, the message over it
            assert big.close_code()[0] == 1009
        with Client(server.url) as bad:
            bad.ws.send(b'{"op": "open", "model": "\xff"}', text=True)  # a text frame whose bytes are not UTF-8
            assert bad.close_code()[0] == 1007
        with Client(server.url) as after:  # none of it touched the server
            after.ok({"op": "open"})
        assert server.metric("rnnedge_serve_closes_total", code="1009") == 1
        assert server.stop() == 0


class _RawSocket:
    """A WebSocket client written out by hand, to send frames no client library sends (an empty close, RSV bits)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.sendall(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, first_byte: int, payload: bytes = b"") -> None:
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([first_byte, 0x80 | len(payload)]) + mask + masked)

    def close_frame(self) -> bytes:
        """The payload of the server's close frame (skipping other frames), or b"" for an empty one."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            payload = self._read(length)
            if first & 0x0F == 0x8:
                return payload

    def __enter__(self) -> _RawSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "the server closed the socket without a close frame"
            data += chunk
        return data


@TRANSPORTS
def test_an_empty_close_is_answered_and_reserved_bits_are_refused(tiny_lm_onnx: Path, env: dict[str, str]) -> None:
    """A close frame with no code (a browser's ``ws.close()``) is answered with 1000 or an empty close, never a
    code the protocol forbids; a frame with a reserved bit set, with no extension agreed, closes with 1002."""
    with running_server([tiny_lm_onnx], env=env) as server:
        with _RawSocket(server.port) as polite:
            polite.send(0x88)  # FIN + close, no payload
            answer = polite.close_frame()
            assert answer == b"" or struct.unpack("!H", answer[:2])[0] == 1000, answer
        with _RawSocket(server.port) as rude:
            rude.send(0x80 | 0x40 | 0x1, b'{"op": "open"}')  # FIN + RSV1 + text
            assert struct.unpack("!H", rude.close_frame()[:2])[0] == 1002
        with Client(server.url) as after:
            after.ok({"op": "open"})
        assert server.stop() == 0


@TRANSPORTS
def test_sessions_stay_within_the_open_file_limit(tiny_lm_onnx: Path, env: dict[str, str]) -> None:
    """Past the open-file limit a server cannot accept (picows' accept loop then spins on the error): with a
    hard limit of 120 files it holds 56 sessions and closes the next with 1013, saying why; with room under
    the hard limit, ``rnnedge serve`` raises its soft limit to what --max-sessions needs."""
    with running_server([tiny_lm_onnx], "--max-sessions", "500", env=env, files=(120, 120)) as server:
        assert any("the open-file limit (ulimit -n) leaves room for 56" in line for line in server.lines)
        clients = [Client(server.url) for _ in range(56)]
        try:
            for c in clients:
                c.ok({"op": "open"})
            with Client(server.url) as extra:
                full = "server full: 56 sessions open (the open-file limit); try again later"
                assert extra.close_code() == (1013, full)
        finally:
            for c in clients:
                c.close()
        with Client(server.url) as after:
            after.ok({"op": "open"})
        assert server.stop() == 0
    with running_server([tiny_lm_onnx], "--max-sessions", "500", env=env, files=(100, 4096)) as server:
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text()
        assert [line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")] == [
            ["564", "4096"]
        ]
        assert not any("open-file limit" in line for line in server.lines)


def test_sigterm_finishes_in_flight_steps_and_hands_out_state_tokens(tiny_lm_onnx: Path, lm: LanguageModel) -> None:
    """A generation under way stops after its current step; every session gets its token, then 1001; exit 0.

    The tokens then continue on a second process exactly as the sessions would have: the two-replica handoff.
    """
    with running_server([tiny_lm_onnx], "--batch-window-ms", "20") as a, running_server([tiny_lm_onnx]) as b:
        writer, idle = Client(a.url), Client(a.url)
        writer.ok({"op": "open"})
        idle.ok({"op": "open"})
        idle.ok({"op": "feed", "input": "the stock market"})
        writer.send({"op": "generate", "prompt": "the company", "max_words": 256, "seed": 5})
        words: list[str] = []
        while len(words) < 3:
            words.append(writer.recv()["word"])
        a.proc.send_signal(15)
        while (reply := writer.recv())["op"] == "word":
            words.append(reply["word"])
        assert reply["op"] == "generated" and reply["stopped"] == "shutdown" and reply["words"] == words
        goodbye = writer.recv()
        assert goodbye["op"] == "shutdown" and "token" in goodbye
        assert writer.close_code() == (1001, "server shutting down")
        idle_goodbye = idle.recv()
        assert idle.close_code()[0] == 1001
        assert a.wait(20) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", a.port), timeout=2)
        # Replica b continues both sessions from their tokens.
        with Client(b.url) as w2, Client(b.url) as i2:
            w2.ok({"op": "open", "token": goodbye["token"]})
            i2.ok({"op": "open", "token": idle_goodbye["token"]})
            w_next = w2.ok({"op": "feed", "input": "and", "probs": True})
            i_next = i2.ok({"op": "feed", "input": "fell", "probs": True})
    alone = lm.stream()
    alone.feed("the company")
    for w in words:
        alone.feed(w)  # every word sent was fed before the shutdown: the in-flight step finished
    assert np.array_equal(np.array(w_next["probs"], np.float32), alone.feed("and"))
    other = lm.stream()
    other.feed("the stock market")
    assert np.array_equal(np.array(i_next["probs"], np.float32), other.feed("fell"))


def test_signed_tokens(tiny_lm_onnx: Path, tmp_path: Path, lm: LanguageModel) -> None:
    """Replicas sharing a --token-key-file take each other's tokens and refuse unsigned or foreign-signed ones."""
    key = b"0123456789abcdef-replicas-share-this"
    (tmp_path / "key").write_bytes(key + b"\n")
    with (
        running_server([tiny_lm_onnx], "--token-key-file", str(tmp_path / "key")) as signed,
        running_server([tiny_lm_onnx], "--token-key-file", str(tmp_path / "key")) as twin,
    ):
        with Client(signed.url) as c:
            c.ok({"op": "open"})
            c.ok({"op": "feed", "input": "the"})
            token = c.ok({"op": "state"})["token"]
        state = lm.init_state(1)
        with Client(twin.url) as c:
            assert c.ok({"op": "open", "token": token})["op"] == "opened"
            assert decode_state(token, lm, key).model_id == lm.metadata.model_id
        for bad, message in (
            (encode_state(state), "only takes signed state tokens"),
            (encode_state(state, b"another key, another deployment"), "signature does not match"),
        ):
            with Client(twin.url) as c:
                reply = c.request({"op": "open", "token": bad})
                assert reply["error"] == "state" and message in reply["message"]


def test_many_clients_coming_and_going_while_others_stream(tiny_lm_onnx: Path) -> None:
    """Short-lived sessions open and drop (some mid-request) around steady ones: no errors, no session left behind."""
    with running_server([tiny_lm_onnx], "--batch-window-ms", "1") as server:
        failures: list[BaseException] = []

        def steady() -> None:
            try:
                with Client(server.url) as c:
                    c.ok({"op": "open"})
                    for i in range(40):
                        c.ok({"op": "feed", "input": [i]})
            except BaseException as e:
                failures.append(e)

        def flaky(n: int) -> None:
            try:
                for i in range(6):
                    c = Client(server.url)
                    c.ok({"op": "open"})
                    c.send({"op": "feed", "input": [n + i]})
                    if i % 2:
                        c.recv()
                    c.close()
            except (BaseException, ConnectionClosed) as e:
                failures.append(e)

        threads = [threading.Thread(target=steady) for _ in range(4)]
        threads += [threading.Thread(target=flaky, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failures, failures
        deadline = time.monotonic() + 10
        while server.metric("rnnedge_serve_sessions", model="tiny-lm") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.metric("rnnedge_serve_sessions", model="tiny-lm") == 0
        assert server.metric("rnnedge_serve_errors_total", code="internal") == 0
