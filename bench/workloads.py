"""The workloads timed side by side: streaming steps at batch 1 and whole sequences, bare onnxruntime vs rnnedge."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from rnnedge.errors import ProviderError
from rnnedge.runtime import ClassifierModel, LanguageModel, Model, ModelMetadata, read_metadata

from .child import BenchError
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


def _no_workload(model: Model) -> BenchError:
    return BenchError(f"no workload for a {model.kind}: the bench times classifiers and language models")


def step_workload(model: Model, session: ort.InferenceSession, *, length: int | None = None, seed: int = 0) -> Workload:
    """Streaming at batch 1, one step per call: bare ``session.run`` vs ``Model.step`` vs ``Stream.feed``.

    Each contender call is one sequence of ``length`` single steps (28 rows for a classifier,
    35 words for a language model) from the initial state, so the units are steps.
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
    user_inputs: list[Any]
    if isinstance(model, LanguageModel):
        length = length or 35
        ids = rng.integers(0, model.vocab_size, size=length).astype(np.int64)
        graph_inputs = [ids[t : t + 1][None] for t in range(length)]  # (1, 1) int64 each
        user_inputs = [ids[t : t + 1] for t in range(length)]  # (1,) int64 ids
        feed_label = "rnnedge Stream.feed (id → probs)"
    elif isinstance(model, ClassifierModel):
        length = length or 28
        rows = (rng.random((length, model.feature_size)) * 255).astype(np.uint8)  # (T, F)
        graph_inputs = [model.preprocess(rows[t : t + 1])[None] for t in range(length)]  # (1, 1, F) float32
        user_inputs = list(rows)  # (F,) uint8 each
        feed_label = "rnnedge Stream.feed (uint8 row)"
    else:
        raise _no_workload(model)
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
    same inputs, and, for a classifier, ``predict`` on uint8 images (normalisation included).
    """
    meta = model.metadata
    rng = np.random.default_rng(seed)
    names = [o.name for o in meta.outputs] + [s.output for s in meta.states]
    contenders: dict[str, Callable[[], object]] = {}
    if isinstance(model, LanguageModel):
        batch, length, unit = batch or 20, length or 35, "token"
        x = rng.integers(0, model.vocab_size, size=(batch, length)).astype(np.int64)  # (B, T)
    elif isinstance(model, ClassifierModel):
        batch, length, unit = batch or 256, length or 28, "row"
        images = (rng.random((batch, length, model.feature_size)) * 255).astype(np.uint8)  # (B, T, F)
        x = model.preprocess(images)  # (B, T, F) float32
    else:
        raise _no_workload(model)
    feeds = {meta.input.name: x, **_zero_state(meta, batch)}
    if meta.lengths is not None:  # every sequence whole
        feeds[meta.lengths.name] = np.full(batch, length, dtype=np.int64)
    contenders[BARE] = lambda: session.run(names, feeds)
    contenders["rnnedge Model.step"] = lambda: model.step(x, model.init_state(batch))
    if isinstance(model, ClassifierModel):
        contenders["rnnedge predict (uint8 images)"] = lambda: model.predict(images, batch_size=batch)
    return Workload("throughput", unit, batch * length, batch, length, contenders)


def run_workload(
    workload: Workload, *, rounds: int, target_s: float = 0.02, pause_s: float = 0.0
) -> dict[str, Summary]:
    """Time a workload's contenders interleaved (see :func:`interleaved`); summaries are in seconds per unit."""
    samples = interleaved(workload.contenders, rounds=rounds, target_s=target_s, pause_s=pause_s)
    return {name: summarize([v / workload.per_call for v in values]) for name, values in samples.items()}
