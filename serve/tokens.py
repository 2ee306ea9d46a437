"""State tokens: a session's recurrent state as an opaque string a client keeps and hands back.

Any ``rnnedge serve`` process holding the same model file can open a session from a token and
continue it with bit-identical results, which makes replicas interchangeable. A token is
untrusted input. It holds no pickle: a fixed binary layout, URL-safe base64 without padding::

    b"RNS1" | flags (1 byte: bit 0 = signed) | header length (uint32 LE) | header (JSON)
            | the state arrays, C order, little-endian, in the header's order | [HMAC-SHA256 (32 bytes)]

The header is ``{"model_id": str, "parts": [[name, dtype, shape], ...]}``. Decoding checks the
layout, the sizes, the model (its ``model_id`` fingerprint) and then the arrays with the runtime's
own state check (names, dtypes, fixed sizes, batch 1, finite values). With a key (``--token-key-file``)
tokens are signed and a token without a valid signature is refused, so clients cannot hand in states
they made up; without a key a server takes any well-formed state of its model (finite values that
mean nothing are not detectable: see docs/bad_input.md's limits).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct

import numpy as np

from rnnedge.runtime import Model, State, StateError

__all__ = ["MAX_TOKEN_CHARS", "decode_state", "encode_state"]

_MAGIC = b"RNS1"
_SIGNED = 1
_MAC_BYTES = 32
_MAX_HEADER = 4096
_DTYPES = {"float32", "float64", "float16", "int64", "int32"}
MAX_TOKEN_CHARS = 1 << 22  # 4 MiB of base64; the server's message size limit is usually far lower


def encode_state(state: State, key: bytes | None = None) -> str:
    """``state`` (batch 1) -> a token string; signed with ``key`` when one is given."""
    parts = [[name, str(a.dtype), list(a.shape)] for name, a in state.items()]
    header = json.dumps({"model_id": state.model_id, "parts": parts}, separators=(",", ":")).encode()
    body = b"".join(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes() for a in state.values())
    flags = _SIGNED if key else 0
    payload = _MAGIC + bytes([flags]) + struct.pack("<I", len(header)) + header + body
    if key:
        payload += hmac.new(key, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def decode_state(token: object, model: Model, key: bytes | None = None) -> State:
    """A token -> a checked :class:`State` (batch 1) of ``model``; :class:`StateError` saying what is wrong."""
    if not isinstance(token, str) or not token:
        raise StateError(f"a state token is a non-empty string, got {type(token).__name__}")
    if len(token) > MAX_TOKEN_CHARS:
        raise StateError(f"state token of {len(token):,} characters is over the {MAX_TOKEN_CHARS:,} limit")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise StateError("state token is not URL-safe base64 (was it cut or changed?)") from None
    if len(raw) < 9 or raw[:4] != _MAGIC:
        raise StateError("not an rnnedge state token (its first bytes are not RNS1): was it cut or changed?")
    flags = raw[4]
    if flags not in (0, _SIGNED):
        raise StateError(f"state token has unknown flags {flags}")
    if flags & _SIGNED:
        if len(raw) < 9 + _MAC_BYTES:
            raise StateError("state token is too short for its signature")
        raw, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if key is not None and not hmac.compare_digest(mac, hmac.new(key, raw, hashlib.sha256).digest()):
            raise StateError("state token's signature does not match this server's key (changed, or another key)")
    elif key is not None:
        raise StateError("this server only takes signed state tokens (it has a --token-key-file); this one is unsigned")
    (header_len,) = struct.unpack("<I", raw[5:9])
    if header_len > _MAX_HEADER or 9 + header_len > len(raw):
        raise StateError(f"state token header of {header_len} bytes does not fit (limit {_MAX_HEADER})")
    try:
        header = json.loads(raw[9 : 9 + header_len])
    except (UnicodeDecodeError, ValueError):
        raise StateError("state token header is not JSON") from None
    arrays = _arrays(header, raw[9 + header_len :])
    if header["model_id"] != model.metadata.model_id:
        raise StateError(
            f"state token belongs to model {str(header['model_id'])[:40]!r}, not to this one "
            f"({model.metadata.model_id}): open it on a server of the model that made it"
        )
    return model.check_state(model.state_from_arrays(arrays), 1)  # names, dtypes, fixed sizes, finite; batch 1


def _arrays(header: object, body: bytes) -> dict[str, np.ndarray]:
    ok = isinstance(header, dict) and set(header) == {"model_id", "parts"} and isinstance(header["model_id"], str)
    parts = header.get("parts") if isinstance(header, dict) else None
    if not ok or not isinstance(parts, list) or not 1 <= len(parts) <= 16:
        raise StateError("state token header must be {model_id: str, parts: [[name, dtype, shape], ...]}")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for part in parts:
        if not (isinstance(part, list) and len(part) == 3 and isinstance(part[0], str) and part[1] in _DTYPES):
            raise StateError(f"state token part {str(part)[:80]} is not [name, dtype, shape] with a known dtype")
        name, dtype, shape = part
        if not (
            isinstance(shape, list)
            and len(shape) <= 4
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 1 << 24 for d in shape)
        ):
            raise StateError(f"state token part {name[:40]!r} has a bad shape {str(shape)[:80]}")
        dt = np.dtype(dtype).newbyteorder("<")
        size = dt.itemsize * int(np.prod(shape, dtype=object))
        if offset + size > len(body):
            raise StateError(f"state token is truncated: part {name[:40]!r} needs {size} bytes")
        arrays[name] = np.frombuffer(body, dt, count=size // dt.itemsize, offset=offset).reshape(shape).astype(dtype)
        offset += size
    if offset != len(body):
        raise StateError(f"state token has {len(body) - offset} bytes after its arrays")
    return arrays
