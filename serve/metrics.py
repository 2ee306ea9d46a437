"""Prometheus metrics of one server, in a registry of its own (several servers can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_STEP_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Sessions, connections, steps, batch sizes, step latency, queue wait, request time, errors and closes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("rnnedge_serve_connections", "Open WebSocket connections.", registry=r)
        self.sessions = Gauge("rnnedge_serve_sessions", "Open sessions.", ["model"], registry=r)
        self.steps = Counter("rnnedge_serve_steps", "Batched model calls (StreamBatch steps).", ["model"], registry=r)
        self.tokens = Counter(
            "rnnedge_serve_tokens",
            "Session steps: tokens or rows advanced, summed over sessions.",
            ["model"],
            registry=r,
        )
        self.batch_size = Histogram(
            "rnnedge_serve_batch_size",
            "Sessions advanced per model call.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.step_seconds = Histogram(
            "rnnedge_serve_step_seconds",
            "Duration of one batched model call.",
            ["model"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "rnnedge_serve_queue_seconds",
            "From a feed's arrival at the model's worker to the start of its step.",
            ["model"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.request_seconds = Histogram(
            "rnnedge_serve_request_seconds",
            "Server time of one request, by op: from its message's arrival to its last reply's send.",
            ["op"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.errors = Counter("rnnedge_serve_errors", "Requests refused, by error code.", ["code"], registry=r)
        self.closes = Counter(
            "rnnedge_serve_closes",
            "Connections the server closed, by close code (every code it sends, 1009 included).",
            ["code"],
            registry=r,
        )

    def start_model(self, name: str) -> None:
        """Show a served model's series from the start (at zero) rather than after its first step."""
        for metric in (self.sessions, self.steps, self.tokens, self.batch_size, self.step_seconds, self.queue_seconds):
            metric.labels(name)

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
