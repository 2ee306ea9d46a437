"""rnnedge as a Ray Serve application: replicas holding ``rnnedge serve``'s batching worker and protocol.

Each replica loads the models, runs one :class:`~rnnedge.serve.batcher.ModelWorker` per model (the
runtime's ``StreamBatch`` behind it) and answers WebSocket sessions with the same
:class:`~rnnedge.serve.sessions.SessionOps` as ``rnnedge serve``: same messages, error codes, close
codes and state tokens. Ray's HTTP proxy spreads connections over the replicas; a session moves
between replicas by its state token (:class:`~rnnedge.serve.client.ResumingClient` does it when a
replica dies). Needs the ``ray`` extra (``pip install "rnnedge[ray]"``)::

    serve run rnnedge.serve.ray_app:build_app models=ptb-small.onnx replicas=2

Every node must see the model files at the same paths. Routes: ``/`` (WebSocket), ``/healthz``,
``/metrics`` (the answering replica's own metrics), ``/replica`` (which replica answered: its
process id and Ray replica id).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' parameter types at run time
# (a string annotation would make ``websocket`` a query parameter, and the handshake fail with 403).
import asyncio
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, Response
from ray import serve
from ray.serve import Application

from .batcher import ModelWorker
from .config import ServeConfig
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .protocol import CLOSE_BINARY, CLOSE_FULL, CLOSE_IDLE, CLOSE_TOO_BIG
from .server import load_models
from .sessions import Conversation, SessionOps

__all__ = ["RnnEdgeReplica", "app", "build_app"]

api = FastAPI()


@serve.deployment(ray_actor_options={"num_cpus": 0})  # the worker threads are the load: don't reserve cores
@serve.ingress(api)
class RnnEdgeReplica:
    """One replica: the models, their workers (started on the replica's event loop), the sessions it holds."""

    def __init__(self, model_paths: list[str], config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.models = load_models([Path(p) for p in model_paths], config)
        self.ops: SessionOps | None = None
        self.connections = 0

    def _session_ops(self) -> SessionOps:
        if self.ops is None:
            loop = asyncio.get_running_loop()
            window = self.config.batch_window_ms / 1000
            workers = {
                name: ModelWorker(
                    name, model, loop, self.metrics, self.config.max_batch, window, self.config.half_batch_from
                )
                for name, model in self.models.items()
            }
            for name in workers:
                self.metrics.start_model(name)
            self.ops = SessionOps(workers, self.config, self.metrics, gone=(WebSocketDisconnect, RuntimeError))
        return self.ops

    @api.get("/healthz")
    def healthz(self) -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    @api.get("/metrics")
    def metrics_text(self) -> Response:
        return Response(self.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @api.get("/replica")
    def replica(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "replica": str(serve.get_replica_context().replica_id)}

    @api.websocket("/")
    async def session(self, websocket: WebSocket) -> None:
        ops = self._session_ops()
        await websocket.accept()
        if self.connections >= self.config.max_sessions:
            await self._close(
                websocket,
                CLOSE_FULL,
                f"server full: {self.connections} sessions open (--max-sessions); try again later",
            )
            return
        conv = Conversation(websocket.send_text)
        self.connections += 1
        self.metrics.connections.inc()
        try:
            await self._converse(websocket, conv, ops)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client left
        finally:
            await ops.end(conv)
            self.connections -= 1
            self.metrics.connections.dec()

    async def _converse(self, websocket: WebSocket, conv: Conversation, ops: SessionOps) -> None:
        limit, idle = self.config.max_message_bytes, self.config.idle_timeout
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), idle)
            except (TimeoutError, asyncio.TimeoutError):  # distinct types on Python 3.10
                await self._close(websocket, CLOSE_IDLE, f"idle for {idle:g} s (--idle-timeout)")
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self._close(websocket, CLOSE_BINARY, "binary frames are not part of the protocol: send JSON text")
                return
            if len(text) > limit or len(text.encode()) > limit:
                await self._close(websocket, CLOSE_TOO_BIG, f"message over {limit} bytes (max_message_bytes)")
                return
            await ops.answer(conv, text)

    async def _close(self, websocket: WebSocket, code: int, reason: str) -> None:
        self.metrics.closes.labels(str(code)).inc()
        await websocket.close(code, reason)


def app(model_paths: list[str | os.PathLike[str]], config: ServeConfig | None = None, replicas: int = 2) -> Application:
    """The application: ``replicas`` replicas serving ``model_paths`` with ``config`` (host and port: Ray's)."""
    deployment: Any = RnnEdgeReplica  # a ray.serve Deployment (the decorator's type is not in its stubs)
    bound: Application = deployment.options(num_replicas=replicas).bind(
        [str(p) for p in model_paths], config or ServeConfig()
    )
    return bound


def build_app(args: dict[str, str]) -> Application:
    """For ``serve run rnnedge.serve.ray_app:build_app models=A.onnx,B.onnx replicas=2 max_batch=64 ...``.

    ``models`` (comma-separated paths) and ``replicas``; any other key is a :class:`ServeConfig` field.
    """
    args = dict(args)
    models = args.pop("models", "")
    replicas = int(args.pop("replicas", "2"))
    fields = ServeConfig.__dataclass_fields__
    unknown = sorted(set(args) - set(fields))
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(unknown)}; allowed: models, replicas, {', '.join(fields)}")
    config = ServeConfig(**{k: type(getattr(ServeConfig(), k))(v) for k, v in args.items()})
    return app([m for m in models.split(",") if m], config, replicas)
