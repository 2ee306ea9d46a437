"""The JSON protocol of ``rnnedge serve``: what a client may send, checked field by field.

Every message is one JSON object in a text frame. A request names its operation in ``op`` and
may carry an ``id`` (a string or an int) that the server copies into every reply to it. Requests
on one connection are answered in order, one at a time (a connection holds at most one session):

=========  ==========================================================================  =====================
op         fields (``?`` optional)                                                     reply ``op``
=========  ==========================================================================  =====================
open       model?, token?, strict?                                                     ``opened``
feed       input, top_k?, probs?, token?                                               ``result``
top_k      k?                                                                          ``result``
generate   max_words, temperature?, top_k?, seed?, prompt?  (language models)          ``word`` ..., ``generated``
state      (none)                                                                      ``state``
close      (none)                                                                      ``closed``
=========  ==========================================================================  =====================

A tagger's ``result`` holds one ``top_k`` list (and ``probs`` row) per frame fed; see docs/serving.md.
A refused request gets ``{"op": "error", "error": CODE, "message": ...}`` and changes nothing;
the connection stays open. Close codes end a connection (see :data:`CLOSE_CODES`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .speedups import dumps

__all__ = [
    "CLOSE_BAD_TEXT",
    "CLOSE_BINARY",
    "CLOSE_CODES",
    "CLOSE_FULL",
    "CLOSE_IDLE",
    "CLOSE_SHUTDOWN",
    "CLOSE_TOO_BIG",
    "ERROR_CODES",
    "REQUEST_FIELDS",
    "ProtocolError",
    "Request",
    "parse_request",
    "reply_text",
]

CLOSE_SHUTDOWN = 1001  # going away: the server is shutting down (a "shutdown" message with the state token came first)
CLOSE_BINARY = 1003  # unsupported data: a binary frame
CLOSE_BAD_TEXT = 1007  # invalid frame payload data: a text message that is not UTF-8
CLOSE_TOO_BIG = 1009  # message too big: over --max-message-bytes (its fragments counted together)
CLOSE_FULL = 1013  # try again later: --max-sessions connections are open
CLOSE_IDLE = 4001  # no message for --idle-timeout seconds

CLOSE_CODES = {
    CLOSE_SHUTDOWN: "the server is shutting down; the last message before it holds the session's state token",
    CLOSE_BINARY: "a binary frame: the protocol is JSON text",
    CLOSE_BAD_TEXT: "a text message that is not UTF-8",
    CLOSE_TOO_BIG: "a message over the size limit",
    CLOSE_FULL: "the server holds its maximum number of sessions: try again later or another replica",
    CLOSE_IDLE: "no message within the idle timeout",
}

ERROR_CODES = {
    "malformed": "the message is not a JSON object (or holds NaN or Infinity)",
    "bad_request": "unknown op, unknown field, missing field, or a field of the wrong type or range",
    "no_session": "this op needs an open session: send open first",
    "already_open": "open came while this connection holds a session: close it first (one session per connection)",
    "unknown_model": "no model of that name is served",
    "input": "the model refused the input (the runtime's message); the session's state is unchanged",
    "state": "the state token is malformed, changed, unsigned, or of another model",
    "limit": "a feed or a generation over the server's limits",
    "unsupported": "the op does not apply to this model's kind (generate on a classifier)",
    "shutting_down": "the server is draining; the connection closes after its shutdown message",
    "internal": "a bug: the server logged it; the session's state is unchanged",
}


@dataclass(frozen=True)
class _Field:
    types: tuple[type, ...]
    required: bool = False
    check: Any = None  # (value) -> error text or None


def _int_in(lo: int, hi: int | None = None) -> Any:
    def check(v: int) -> str | None:
        if v < lo or (hi is not None and v > hi):
            return f"an int >= {lo}" if hi is None else f"an int in [{lo}, {hi}]"
        return None

    return check


def _positive_finite(v: float) -> str | None:
    return None if math.isfinite(v) and v > 0 else "a finite number > 0"


def _short_str(v: str) -> str | None:
    return None if 0 < len(v) <= 256 else "a non-empty string of at most 256 characters"


_STR = (str,)
_INT = (int,)
_BOOL = (bool,)
_NUM = (int, float)
_INPUT = (str, list)

_OPS: dict[str, dict[str, _Field]] = {
    "open": {"model": _Field(_STR, check=_short_str), "token": _Field(_STR), "strict": _Field(_BOOL)},
    "feed": {
        "input": _Field(_INPUT, required=True),
        "top_k": _Field(_INT, check=_int_in(1)),
        "probs": _Field(_BOOL),
        "token": _Field(_BOOL),  # the reply carries the state token after this feed (for resuming elsewhere)
    },
    "top_k": {"k": _Field(_INT, check=_int_in(1)), "probs": _Field(_BOOL)},
    "generate": {
        "max_words": _Field(_INT, required=True, check=_int_in(1)),
        "temperature": _Field(_NUM, check=_positive_finite),
        "top_k": _Field(_INT, check=_int_in(1)),
        "seed": _Field(_INT, check=_int_in(0, 2**63 - 1)),
        "prompt": _Field(_INPUT),
    },
    "state": {},
    "close": {},
}


REQUEST_FIELDS: dict[str, dict[str, bool]] = {op: {n: f.required for n, f in fs.items()} for op, fs in _OPS.items()}
"""Each op's fields, ``True`` for a required one: what docs/serving.md's protocol table is checked against."""


class ProtocolError(Exception):
    """A request the server refuses before it reaches the model: ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str, request_id: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """One checked request: its op, its fields (only known ones, of the right types) and its id."""

    op: str
    fields: dict[str, Any] = field(default_factory=dict)
    id: str | int | None = None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # one decoder: json.loads with a hook builds one per call


def reply_text(reply: dict[str, Any]) -> str:
    """A reply object -> its compact JSON text (an ``id`` of ``None`` is left out)."""
    if "id" in reply and reply["id"] is None:
        del reply["id"]
    return dumps(reply)


def parse_request(text: str) -> Request:
    """A text frame -> a :class:`Request`; :class:`ProtocolError` naming what is wrong and what is allowed."""
    try:
        message = _DECODER.decode(text)
    except ValueError as e:  # JSONDecodeError, NaN/Infinity, a lone surrogate
        raise ProtocolError("malformed", f"not JSON: {str(e)[:120]}") from None
    except RecursionError:
        raise ProtocolError("malformed", "not JSON: nested too deeply") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed", f"a message is a JSON object, got a JSON {type(message).__name__}")
    request_id = message.pop("id", None)
    if request_id is not None and not (
        (isinstance(request_id, str) and len(request_id) <= 64)
        or (isinstance(request_id, int) and not isinstance(request_id, bool) and abs(request_id) < 2**53)
    ):
        raise ProtocolError("bad_request", "id must be a string of at most 64 characters or an int")
    op = message.pop("op", None)
    if not isinstance(op, str) or op not in _OPS:
        shown = repr(op)[:40]
        raise ProtocolError("bad_request", f"op must be one of {', '.join(_OPS)}, got {shown}", request_id)
    allowed = _OPS[op]
    if not message.keys() <= allowed.keys():
        unknown = sorted(set(message) - set(allowed))
        shown = ", ".join(repr(u[:40]) for u in unknown[:5])
        raise ProtocolError(
            "bad_request", f"{op}: unknown field(s) {shown}; allowed: {', '.join(allowed) or 'none'}", request_id
        )
    for name, spec in allowed.items():
        if name not in message:
            if spec.required:
                raise ProtocolError("bad_request", f"{op}: missing field {name!r}", request_id)
            continue
        value = message[name]
        # bool is an int in Python but never one here, and an int is a fine number
        ok = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
        if not ok:
            want = " or ".join(_JSON_NAMES[t] for t in spec.types)
            raise ProtocolError(
                "bad_request", f"{op}: {name} must be {want}, got {_json_type(value)} {_short(value)}", request_id
            )
        problem = spec.check(value) if spec.check else None
        if problem:
            raise ProtocolError("bad_request", f"{op}: {name} must be {problem}, got {_short(value)}", request_id)
    return Request(op, message, request_id)


_JSON_NAMES = {str: "a string", int: "an int", float: "a number", bool: "true or false", list: "a list"}


def _json_type(value: object) -> str:
    return {
        str: "string",
        int: "int",
        float: "number",
        bool: "boolean",
        list: "list",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _short(value: object) -> str:
    return json.dumps(value)[:60]
