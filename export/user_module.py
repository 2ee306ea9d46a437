"""Bring your own model: a user's ``nn.Module`` with LSTM/GRU layers -> one validated, streaming rnnedge file.

The module's structure is read off its submodules (:mod:`.structure`: an optional
``nn.Embedding``, one or more ``nn.LSTM``/``nn.GRU`` in turn, any ``nn.Dropout``, a final ``nn.Linear``) and
written by the same graph writers as rnnedge's own models; the file is then validated against
the module's own ``forward`` (the user's code is the reference, with the rule of
:mod:`.validate`: whole sequences, chunked streams, padded batches) before it is kept.

The forward convention, per task (``B`` sequences of ``T`` steps):

- ``classifier``: float frames ``(B, T, C)`` in -> logits ``(B, classes)`` out, from the mean of
  the top layer's outputs over time (``head="mean"``) or its final state (``head="last"``:
  ``out[:, -1]``, or ``torch.cat([h_n[-2], h_n[-1]], 1)`` for a bidirectional layer);
- ``tagger``: float frames ``(B, T, C)`` -> logits ``(B, T, classes)``, one per frame (causal);
- ``language-model``: int64 ids ``(B, T)`` -> logits ``(B, T, vocabulary)``.

``forward(x)`` takes the batch alone, starts from a zero state and returns logits (before any
softmax); a tuple's first element is taken (``(output, hidden)``). ``time_major=True`` feeds it
``(T, B, ...)`` and, for per-step outputs, reads ``(T, B, ...)`` back. Any other signature takes
a three-line wrapper (``docs/own-module.md``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from rnnedge.errors import ConfigError, UnsupportedModuleError
from rnnedge.runtime.metadata import ModelMetadata, Standardize

from .exporter import write_validated
from .graphs import language_model_graph, sequence_classifier_graph, tagger_graph
from .metadata import io_specs, model_id_of, producer, tensor_spec
from .reference import torch_reference
from .results import ExportResult
from .structure import Recurrent, read_structure
from .validate import Scale, Tolerances, magnitude, unit

__all__ = [
    "HEADS",
    "TASKS",
    "Task",
    "build_module_export",
    "export_module",
    "load_user_module",
    "standardize_from",
]

HEADS = ("last", "mean")


@dataclass(frozen=True)
class Task:
    """What one task makes of a module: its checks, graph, metadata kind and outputs.

    ``check(net, name)`` refuses what the task cannot represent; ``graph(net, head)`` writes it;
    ``kind(net)`` is the runtime kind; ``outputs(logits)`` the graph's outputs from the module's
    logits; ``per_step`` says the logits have a time axis, ``sequence_outputs`` which outputs do;
    ``lengths`` that the graph takes per-sequence lengths.
    """

    name: str
    check: Callable[[Recurrent], None]
    graph: Callable[[Recurrent, str], onnx.ModelProto]
    kind: Callable[[Recurrent], str]
    outputs: Callable[[Tensor], dict[str, Tensor]]
    per_step: bool
    sequence_outputs: frozenset[str] = frozenset()
    main_input: str = "x"
    lengths: bool = True


def _frames_in(task: str) -> Callable[[Recurrent], None]:
    def check(net: Recurrent) -> None:
        if net.embedding is not None:
            raise UnsupportedModuleError(
                f"the {task} task takes real-valued frames (B, T, C), but the module embeds token ids "
                "(an nn.Embedding); export it with task='language-model', or drop the embedding"
            )

    return check


def _causal(task: str, check: Callable[[Recurrent], None]) -> Callable[[Recurrent], None]:
    def causal(net: Recurrent) -> None:
        check(net)
        backward = [s.name for s in net.stages if s.bidirectional]
        if backward:
            raise UnsupportedModuleError(
                f"submodule {backward[0]!r} is bidirectional: a {task} streams causally (each result from the "
                "steps up to it), but its backward direction reads later steps; use bidirectional=False, or "
                "export it as a classifier (which re-reads the prefix)"
            )

    return causal


def _needs_embedding(net: Recurrent) -> None:
    if net.embedding is None:
        raise UnsupportedModuleError(
            "the language-model task takes token ids (B, T) through an nn.Embedding first; the module has none"
        )


def _probs(logits: Tensor) -> dict[str, Tensor]:
    return {"logits": logits, "probs": torch.softmax(logits, -1)}


def _next_probs(logits: Tensor) -> dict[str, Tensor]:
    return {"logits": logits, "next_probs": torch.softmax(logits[:, -1], -1)}


TASKS: dict[str, Task] = {
    "classifier": Task(
        "classifier",
        _frames_in("classifier"),
        sequence_classifier_graph,
        lambda net: "noncausal_classifier" if net.bidirectional else "causal_classifier",
        _probs,
        per_step=False,
    ),
    "tagger": Task(
        "tagger",
        _causal("tagger", _frames_in("tagger")),
        lambda net, head: tagger_graph(net),
        lambda net: "tagger",
        _probs,
        per_step=True,
        sequence_outputs=frozenset({"logits", "probs"}),
    ),
    "language-model": Task(
        "language-model",
        _causal("language model", _needs_embedding),
        lambda net, head: language_model_graph(net),
        lambda net: "language_model",
        _next_probs,
        per_step=True,
        sequence_outputs=frozenset({"logits"}),
        main_input="tokens",
        lengths=False,
    ),
}
_SCALES: dict[str, Scale] = {"logits": magnitude, "probs": unit, "next_probs": unit}


def standardize_from(sequences: Sequence[np.ndarray]) -> Standardize:
    """Per-channel mean and std of a training set's frames (``(T_i, C)`` arrays), as training would compute them."""
    rows = np.concatenate([np.asarray(s, dtype=np.float64) for s in sequences])
    std = rows.std(0)
    return Standardize(tuple(float(v) for v in rows.mean(0)), tuple(float(max(v, 1e-6)) for v in std))


def _labels(labels: Sequence[str] | None, classes: int, head: str) -> tuple[str, ...]:
    if labels is None:
        return tuple(str(k) for k in range(classes))
    found = tuple(labels)
    if len(found) != classes or not all(isinstance(x, str) for x in found):
        raise ConfigError(f"labels: {len(found)} given, but the output layer {head!r} has {classes} outputs")
    return found


def _vocabulary(vocabulary: Sequence[str] | None, net: Recurrent, tokens: str) -> dict[str, Any]:
    assert net.embedding is not None
    size = net.embedding.num_embeddings
    if vocabulary is None:
        raise ConfigError(f"a language model needs its vocabulary: {size} tokens, one per embedding row, in id order")
    vocab = tuple(vocabulary)
    if len(vocab) != size or net.head.out_features != size:
        raise ConfigError(
            f"the vocabulary has {len(vocab)} tokens, the embedding {size} rows and the output layer "
            f"{net.head.out_features} outputs; all three must agree"
        )
    missing = [t for t in ("<unk>", "<eos>") if t not in vocab]
    if missing:
        raise ConfigError(
            f"the vocabulary lacks {missing}: rnnedge's language models map unknown tokens to <unk> and end every "
            "line with <eos>; name the ids your model uses for them so"
        )
    if len(set(vocab)) != len(vocab):
        raise ConfigError("the vocabulary repeats a token; each must appear once")
    if tokens not in ("words", "chars"):
        raise ConfigError(f"tokens must be 'words' or 'chars', got {tokens!r}")
    if tokens == "chars" and (long := [t for t in vocab if len(t) != 1 and t not in ("<unk>", "<eos>")]):
        raise ConfigError(f"a character vocabulary must hold single characters besides <unk>, <eos>: {long[:5]}")
    return {"vocabulary": vocab, "unk_id": vocab.index("<unk>"), "eos_id": vocab.index("<eos>"), "tokens": tokens}


def _forward(task: Task, time_major: bool) -> Callable[[nn.Module, Tensor, dict[str, Tensor]], Any]:
    """The module's own ``forward`` under the convention: the batch in, the task's outputs and no state out."""

    def forward(module: nn.Module, x: Tensor, state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        out = module(x.transpose(0, 1) if time_major else x)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(logits, Tensor):
            raise UnsupportedModuleError(
                f"the module's forward returned {type(logits).__name__}; expected a tensor of logits (or a tuple "
                "whose first element is one)"
            )
        if time_major and task.per_step:
            logits = logits.transpose(0, 1)
        return task.outputs(logits), {}

    return forward


def _check_forward(module: nn.Module, task: Task, net: Recurrent, forward: Callable[..., Any]) -> None:
    """One call on a small batch: the output's shape must be the convention's (else refused, saying which)."""
    batch, steps = 2, 5
    if net.embedding is not None:
        x = torch.randint(0, net.embedding.num_embeddings, (batch, steps))
        given = f"int64 ids of shape {tuple(x.shape)}"
    else:
        x = torch.randn(batch, steps, net.input_size)
        given = f"float32 frames of shape {tuple(x.shape)}"
    classes = net.head.out_features
    want = (batch, steps, classes) if task.per_step else (batch, classes)
    try:
        with torch.no_grad():
            outputs, _ = forward(module, x, {})
    except UnsupportedModuleError:
        raise
    except Exception as e:  # the user's code: any error it raises is theirs to see, with what was fed
        raise UnsupportedModuleError(
            f"the module's forward failed on {given} (the {task.name} convention; see docs/own-module.md): "
            f"{type(e).__name__}: {e}"
        ) from None
    got = tuple(outputs["logits"].shape)
    if got != want:
        raise UnsupportedModuleError(
            f"the module's forward gave logits of shape {got} for {given}; a {task.name} must give {want} "
            "(see docs/own-module.md for the convention and a wrapper for other signatures)"
        )


@dataclass(frozen=True)
class ModuleExport:
    """A module turned into a graph, its metadata and the reference (its own forward) it must match."""

    graph: onnx.ModelProto
    metadata: ModelMetadata
    reference: Any


def build_module_export(
    module: nn.Module,
    *,
    task: str,
    head: str = "last",
    labels: Sequence[str] | None = None,
    vocabulary: Sequence[str] | None = None,
    tokens: str = "words",
    standardize: Standardize | tuple[Sequence[float], Sequence[float]] | None = None,
    time_major: bool = False,
    source: str | None = None,
) -> ModuleExport:
    """Read ``module``, write its graph and metadata, and make its reference; nothing is written to disk.

    ``task`` is ``classifier`` (with ``head`` ``last`` or ``mean``), ``tagger`` or ``language-model``
    (with its ``vocabulary``, one token per embedding row, holding ``<unk>`` and ``<eos>``; ``tokens``
    ``words`` or ``chars``). ``labels`` name the classes (default ``"0"``...). ``standardize``
    ``(mean, std)`` per channel: what the runtime applies to raw frames before the module sees them
    (default: none; :func:`standardize_from` computes it from training frames). ``time_major``: the
    module's forward takes ``(T, B, ...)``. ``source`` is recorded as where the module came from.
    ``module`` itself is not changed: a float32 CPU copy of it, in eval mode, is read and run.
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    if head not in HEADS:
        raise ConfigError(f"head must be one of {HEADS}, got {head!r}")
    if not isinstance(module, nn.Module):
        raise ConfigError(f"export_module takes a torch.nn.Module, got {type(module).__name__}")
    spec = TASKS[task]
    copied = copy.deepcopy(module).float().cpu().eval()
    net = read_structure(copied)
    spec.check(net)
    forward = _forward(spec, time_major)
    _check_forward(copied, spec, net, forward)
    graph = spec.graph(net, head)
    others = ("lengths",) if spec.lengths else ()
    main, states, outputs = io_specs(graph, spec.main_input, others)
    fields: dict[str, Any] = {}
    if spec.lengths:
        lengths = next(i for i in graph.graph.input if i.name == "lengths")
        fields.update(lengths=tensor_spec(lengths))
    if net.embedding is None:
        channels = net.input_size
        if standardize is None:
            standardize = Standardize((0.0,) * channels, (1.0,) * channels)  # frames go in as they are
        elif not isinstance(standardize, Standardize):
            standardize = Standardize(tuple(map(float, standardize[0])), tuple(map(float, standardize[1])))
        if len(standardize.mean) != channels or len(standardize.std) != channels:
            raise ConfigError(
                f"standardize has {len(standardize.mean)} means and {len(standardize.std)} stds; "
                f"the module's {net.rnn_name!r} takes {channels} channels"
            )
        fields.update(standardize=standardize, labels=_labels(labels, net.head.out_features, "output layer"))
    else:
        fields.update(_vocabulary(vocabulary, net, tokens))
    stages = [stage.describe() for stage in net.stages]
    described = {
        **(stages[0] if len(stages) == 1 else {"rnns": stages, "input_size": net.input_size}),
        ("num_classes" if net.embedding is None else "vocab_size"): net.head.out_features,
        "tied": net.tied,
        **({"head": head} if task == "classifier" else {}),
    }
    kind = spec.kind(net)
    what = "frames: raw values per channel become (x - mean)/std with `standardize`; lengths: valid steps"
    meta = ModelMetadata(
        kind=kind,
        causal=not net.bidirectional,
        model_id=model_id_of(graph),
        input=main,
        states=states,
        outputs=outputs,
        config={"model": described, "source": {"module": source or type(module).__qualname__, "task": task}},
        quality={},
        producer=producer(),
        notes={
            "input": what if net.embedding is None else "tokens: ids into `vocabulary`",
            "outputs": {
                "classifier": "logits and probs (softmax) of each sequence's whole prefix fed so far",
                "tagger": "logits and probs (softmax): one distribution per frame, from the frames up to it",
                "language-model": "logits at every position; next_probs: the softmax of the last position",
            }[task],
            "source": "exported from a user's own PyTorch module; validated against its forward",
        },
        **fields,
    )

    def make_input(batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
        if net.embedding is not None:
            return rng.integers(0, net.embedding.num_embeddings, (batch, length), dtype=np.int64)
        return rng.standard_normal((batch, length, net.input_size)).astype(np.float32)

    reference = torch_reference(copied, forward, make_input, sequence_outputs=spec.sequence_outputs, scales=_SCALES)
    return ModuleExport(graph, meta, reference)


def export_module(
    module: nn.Module, path: str | os.PathLike[str], *, tolerances: Tolerances | None = None, **options: Any
) -> ExportResult:
    """Export a user's own ``module`` to the rnnedge file ``path``, validated against its own ``forward``.

    ``options`` are :func:`build_module_export`'s (``task`` first). What the file cannot represent
    exactly is refused with :class:`~rnnedge.errors.UnsupportedModuleError` naming the submodule; a
    file that does not compute what ``forward`` computes is refused with
    :class:`~rnnedge.export.validate.ParityError` (``tolerances``: the rule of :mod:`.validate`).
    Nothing is written unless everything passed.
    """
    built = build_module_export(module, **options)
    return write_validated(built.graph, built.metadata, built.reference, Path(path), tolerances)


def load_user_module(spec: str, weights: str | os.PathLike[str] | None = None) -> tuple[nn.Module, str]:
    """``FILE.py:NAME`` -> the module ``NAME()`` builds, with the ``state_dict`` in ``weights`` loaded.

    ``NAME`` is a class or function in the file that takes no arguments. The weights are read with
    ``weights_only=True`` (a file can never run code); a ``{"state_dict": ...}`` or ``{"model": ...}``
    checkpoint is unwrapped. Returns the module and how to name its source in the metadata.
    """
    import importlib.util

    from rnnedge.errors import CheckpointError

    file, sep, name = spec.rpartition(":")
    if not sep or not file.endswith(".py") or not name.isidentifier():
        raise ConfigError(f"--module takes FILE.py:NAME (a class or function building the module), got {spec!r}")
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"--module {spec}: no such file {path}")
    loader = importlib.util.spec_from_file_location(f"rnnedge_user_module_{path.stem}", path)
    if loader is None or loader.loader is None:
        raise ConfigError(f"--module {spec}: {path} cannot be imported as Python")
    code = importlib.util.module_from_spec(loader)
    try:
        loader.loader.exec_module(code)
    except Exception as e:  # the user's file: its own error, with where it came from
        raise ConfigError(f"--module {spec}: importing {path} failed: {type(e).__name__}: {e}") from None
    make = getattr(code, name, None)
    if not callable(make):
        raise ConfigError(f"--module {spec}: {path} defines no class or function named {name!r}")
    try:
        module = make()
    except Exception as e:
        raise ConfigError(f"--module {spec}: {name}() failed (it must build the module with no args): {e}") from None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"--module {spec}: {name}() returned {type(module).__name__}, not a torch.nn.Module")
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"--weights {weights}: no such file") from None
        except Exception as e:
            raise CheckpointError(
                f"--weights {weights} is not a state_dict saved with torch.save (read with weights_only=True): "
                f"{str(e).splitlines()[0]}"
            ) from None
        if isinstance(state, dict) and len(state) == 1 and isinstance(next(iter(state.values())), dict):
            state = next(iter(state.values()))  # {"state_dict": {...}} or {"model": {...}}
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise CheckpointError(f"--weights {weights} holds {type(state).__name__}, not a state_dict of tensors")
        try:
            module.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"--weights {weights} does not fit {name}(): {str(e).strip()[:600]}") from None
    return module, f"{path.name}:{name}"
