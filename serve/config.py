"""The settings of one server (``rnnedge serve``'s options, one to one), checked when made."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rnnedge.runtime import ConfigError

__all__ = ["ServeConfig"]


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server; the command line's options map one to one onto these fields."""

    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (the ready line names it)
    max_batch: int = 64  # sessions advanced per model call at most
    batch_window_ms: float = 0.5  # how long a step waits for more feeds after the first (0: none)
    # from this many sessions of a model on, a step starts once half of them have a feed pending (0: never)
    half_batch_from: int = 32
    max_sessions: int = 1024  # open connections (one session each) at most; more are closed with 1013
    max_message_bytes: int = 65536  # a larger message closes the connection with 1009
    idle_timeout: float = 300.0  # seconds without a message before the server closes with 4001
    max_feed_steps: int = 512  # tokens or rows in one feed
    max_generate_words: int = 256
    shutdown_timeout: float = 10.0  # on SIGTERM: how long in-flight requests get to finish
    threads: int = 1  # onnxruntime intra-op threads per model
    provider: str = "cpu"
    token_key: bytes | None = field(default=None, repr=False)  # sign and check state tokens (HMAC-SHA256)

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_batch", "max_sessions", "max_feed_steps", "max_generate_words", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"{name}={v!r} (expected an int >= 1)")
        half = self.half_batch_from
        if isinstance(half, bool) or not isinstance(half, int) or half < 0:
            problems.append(f"half_batch_from={half!r} (expected an int >= 0)")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            problems.append(f"port={self.port!r} (expected an int in [0, 65535])")
        size = self.max_message_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 1024:
            problems.append(f"max_message_bytes={self.max_message_bytes!r} (expected an int >= 1024)")
        for name, lo in (("batch_window_ms", 0.0), ("idle_timeout", 1e-3), ("shutdown_timeout", 0.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo:
                problems.append(f"{name}={v!r} (expected a finite number >= {lo:g})")
        if self.token_key is not None and (not isinstance(self.token_key, bytes) or len(self.token_key) < 16):
            problems.append("token_key: expected at least 16 bytes")
        if problems:
            raise ConfigError("serve: " + "; ".join(problems))
