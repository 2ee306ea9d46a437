"""``rnnedge serve``: live streams over WebSocket, batched into one model call per step (the ``serve`` extra).

>>> from rnnedge.serve import ServeConfig, run
>>> run([Path("ptb-small.onnx")], ServeConfig(port=8765))      # until SIGTERM

The service composes the runtime's public API (``load``, ``StreamBatch``, ``State``); the runtime
knows nothing about sockets. Modules: :mod:`.protocol` (the messages), :mod:`.config` (the settings),
:mod:`.server` (life cycle and connections), :mod:`.routes` (HTTP routes), :mod:`.sessions` (the
session operations, whatever the transport), :mod:`.batcher` (one worker thread per model),
:mod:`.kinds` (what each model kind serves), :mod:`.outcomes` (what a step's result gives each feed),
:mod:`.tokens` (state tokens), :mod:`.sampling`,
:mod:`.metrics`, :mod:`.client` (a client that reconnects and resumes), :mod:`.ray_app` (Ray Serve).
"""

from __future__ import annotations

from .config import ServeConfig
from .protocol import CLOSE_CODES, ERROR_CODES, ProtocolError, parse_request
from .server import Server, print_ready, run
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
