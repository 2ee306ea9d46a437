"""The workloads timed side by side: streaming steps at batch 1 and whole sequences, bare onnxruntime vs rnnedge."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from rnnedge.errors import ProviderError
from rnnedge.runtime import Model, ModelMetadata, read_metadata

from .providers import ort_providers
from .timing import BARE, Summary, interleaved, summarize

__all__ = ["Workload", "bare_session", "run_workload", "step_workload", "throughput_workload"]


@dataclass
class Workload:
    """Contenders doing the same work; each call of a contender processes ``per_call`` units."""

    name: str
    unit: str
    per_call: int
    batch: int
    length: int
    contenders: dict[str, Callable[[], object]]
    baseline: str = BARE


def bare_session(path: str | os.PathLike[str], threads: int | None, provider: str = "cpu") -> ort.InferenceSession:
    """The session a user writes by hand: ``threads`` intra-op threads (``None``: default) on ``provider``.

    ``provider`` is ``"cpu"`` or ``"cuda"`` (pass a loaded model's ``provider``, so that both run
    on the same device). An fp16 file is refused on the CPU with :class:`ProviderError`, as the
    runtime refuses it: onnxruntime's CPU graph optimiser would crash the process.
    """
    if provider == "cpu" and read_metadata(path).variant == "fp16":
        raise ProviderError(f"{path} is an fp16 model, which runs on the CUDA provider only")
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=ort_providers(provider))


def _zero_state(meta: ModelMetadata, batch: int) -> dict[str, np.ndarray]:
    return {s.name: np.zeros(s.initial_shape(batch), dtype=s.input.dtype) for s in meta.states}


def step_workload(model: Model, session: ort.InferenceSession, *, length: int | None = None, seed: int = 0) -> Workload:
    """Streaming at batch 1, one step per call: bare ``session.run`` vs ``Model.step`` vs ``Stream.feed``.

    Each contender call is one sequence of ``length`` single steps (the kind's ``WORKLOAD``: 28 rows
    for a classifier, 35 words for a language model) from the initial state, so the units are steps.
    The bare loop feeds graph inputs (token ids, normalised rows) and carries the state by
    hand; ``Model.step`` takes the same inputs and checks them and the state; ``Stream.feed``
    takes what a user has (an id, a uint8 row) and returns the prediction (for a language
    model, the graph's ``next_probs``); it fetches only that and the state, where the bare
    loop and ``Model.step`` fetch every output, as ``session.run(None, feeds)`` does.
    """
    meta = model.metadata
    rng = np.random.default_rng(seed)
    names = [o.name for o in meta.outputs] + [s.output for s in meta.states]
    n_out = len(meta.outputs)
    state_names = [s.name for s in meta.states]
    zero = _zero_state(meta, 1)
    length = length or model.WORKLOAD[1]
    user_inputs = model.example_steps(rng, length)  # what a caller feeds: an id, a uint8 row
    graph_inputs = [model.stream_input(x) for x in user_inputs]  # (1, 1, ...) each, as the graph takes it
    feed_label = f"rnnedge Stream.feed ({model.EXAMPLE_STEP})"
    input_name = meta.input.name
    feeds: dict[str, np.ndarray] = {}
    if meta.lengths is not None:  # a graph that takes per-sequence lengths: one valid step per call
        feeds[meta.lengths.name] = np.ones(1, dtype=np.int64)

    def bare() -> None:
        feeds.update(zero)
        for x in graph_inputs:
            feeds[input_name] = x
            out = session.run(names, feeds)
            for name, value in zip(state_names, out[n_out:], strict=True):
                feeds[name] = value

    def core_step() -> None:
        state = model.init_state(1)
        for x in graph_inputs:
            state = model.step(x, state)[1]

    stream = model.stream()

    def stream_feed() -> None:
        stream.reset()
        for x in user_inputs:
            stream.feed(x)

    contenders: dict[str, Callable[[], object]] = {
        BARE: bare,
        "rnnedge Model.step": core_step,
        feed_label: stream_feed,
    }
    return Workload("step", "step", length, 1, length, contenders)


def throughput_workload(
    model: Model,
    session: ort.InferenceSession,
    *,
    batch: int | None = None,
    length: int | None = None,
    seed: int = 0,
) -> Workload:
    """Whole sequences in one call: PTB-style 20 × 35 tokens, or MNIST-style 256 images × 28 rows.

    Contenders: bare ``session.run`` on graph inputs from a zero state, ``Model.step`` on the
    same inputs, and the kind's ``predict`` on what a caller has (uint8 images, ids).
    """
    meta = model.metadata
    rng = np.random.default_rng(seed)
    names = [o.name for o in meta.outputs] + [s.output for s in meta.states]
    contenders: dict[str, Callable[[], object]] = {}
    batch, length, unit = batch or model.WORKLOAD[0], length or model.WORKLOAD[1], model.UNIT
    user = model.example_batch(rng, batch, length)  # (B, T, ...) as predict takes it
    x = model.prepare(user)  # (B, T, ...) as the graph takes it
    feeds = {meta.input.name: x, **_zero_state(meta, batch)}
    if meta.lengths is not None:  # every sequence whole
        feeds[meta.lengths.name] = np.full(batch, length, dtype=np.int64)
    contenders[BARE] = lambda: session.run(names, feeds)
    contenders["rnnedge Model.step"] = lambda: model.step(x, model.init_state(batch))
    # The kind's predict on what a caller has (a classifier's standardisation included).
    contenders[f"rnnedge predict ({model.EXAMPLE_BATCH})"] = lambda: model.predict(user, batch_size=batch)
    return Workload("throughput", unit, batch * length, batch, length, contenders)


def run_workload(
    workload: Workload, *, rounds: int, target_s: float = 0.02, pause_s: float = 0.0
) -> dict[str, Summary]:
    """Time a workload's contenders interleaved (see :func:`interleaved`); summaries are in seconds per unit."""
    samples = interleaved(workload.contenders, rounds=rounds, target_s=target_s, pause_s=pause_s)
    return {name: summarize([v / workload.per_call for v in values]) for name, values in samples.items()}
