"""``rnnedge serve``: live streams over WebSocket, batched into one model call per step (the ``serve`` extra).

>>> from rnnedge.serve import ServeConfig, run
>>> run([Path("ptb-small.onnx")], ServeConfig(port=8765))      # until SIGTERM

The service composes the runtime's public API (``load``, ``StreamBatch``, ``State``); the runtime
knows nothing about sockets. Modules: :mod:`.protocol` (the messages), :mod:`.server` (connections,
sessions, shutdown, HTTP routes), :mod:`.batcher` (one worker thread per model), :mod:`.tokens`
(state tokens), :mod:`.sampling`, :mod:`.metrics`.
"""

from __future__ import annotations

from .protocol import CLOSE_CODES, ERROR_CODES, ProtocolError, parse_request
from .server import ServeConfig, Server, print_ready, run
from .tokens import decode_state, encode_state

__all__ = [
    "CLOSE_CODES",
    "ERROR_CODES",
    "ProtocolError",
    "ServeConfig",
    "Server",
    "decode_state",
    "encode_state",
    "parse_request",
    "print_ready",
    "run",
]
