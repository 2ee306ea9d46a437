"""Checkpoint -> one validated, self-describing ``.onnx`` file.

The file is written to a temporary name beside the target, validated through the
runtime, and only then renamed into place: a failed export leaves no partial file and
never overwrites an earlier good one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from rnnedge.data.atomic import atomic_output
from rnnedge.data.mnist import PIXEL_MEAN, PIXEL_STD
from rnnedge.errors import CheckpointError
from rnnedge.runtime.metadata import METADATA_KEY, ModelMetadata, Preprocessing, StateSpec, TensorSpec
from rnnedge.training.checkpoint import load_checkpoint
from rnnedge.training.models import RowLSTMClassifier, WordLanguageModel
from rnnedge.training.train_classifier import build_classifier
from rnnedge.training.train_lm import build_language_model

from .graphs import OPSET, classifier_graph, language_model_graph
from .validate import ParityReport, Reference, validate_export

__all__ = ["ExportResult", "export_checkpoint", "model_id_of", "tensor_spec"]

_DTYPE_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT64: "int64",
}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the file, its metadata and the parity report that let it through."""

    path: Path
    metadata: ModelMetadata
    parity: ParityReport
    size_bytes: int


def tensor_spec(info: onnx.ValueInfoProto) -> TensorSpec:
    """The metadata's view of a graph input or output, read off the graph itself."""
    dims = tuple(d.dim_param if d.dim_param else d.dim_value for d in info.type.tensor_type.shape.dim)
    return TensorSpec(info.name, _DTYPE_NAMES[info.type.tensor_type.elem_type], dims)


def model_id_of(graph: onnx.ModelProto) -> str:
    """A fingerprint of the weights, so a state made by one model is refused by another."""
    digest = hashlib.sha256()
    for init in sorted(graph.graph.initializer, key=lambda t: t.name):
        digest.update(init.name.encode())
        digest.update(init.raw_data)
    return digest.hexdigest()[:16]


def _producer() -> dict[str, str]:
    def version(pkg: str) -> str:
        try:
            return importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            return "unknown"

    return {
        "name": "rnnedge",
        "version": version("rnnedge"),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": str(OPSET),
    }


def _io_specs(
    graph: onnx.ModelProto, main_input: str
) -> tuple[TensorSpec, tuple[StateSpec, ...], tuple[TensorSpec, ...]]:
    """Split the graph's I/O into the main input, state pairs (``name`` -> ``name_out``) and plain outputs."""
    inputs = {i.name: tensor_spec(i) for i in graph.graph.input}
    outputs = [tensor_spec(o) for o in graph.graph.output]
    states = tuple(StateSpec(spec, f"{name}_out") for name, spec in inputs.items() if name != main_input)
    state_outs = {s.output for s in states}
    return inputs[main_input], states, tuple(o for o in outputs if o.name not in state_outs)


def _classifier(ckpt: Mapping[str, Any]) -> tuple[onnx.ModelProto, ModelMetadata, Reference]:
    model = build_classifier(dict(ckpt))
    graph = classifier_graph(model)
    main, states, outputs = _io_specs(graph, "x")
    cfg = model.config
    metrics = ckpt.get("metrics", {})
    meta = ModelMetadata(
        kind="noncausal_classifier" if cfg.bidirectional else "causal_classifier",
        causal=not cfg.bidirectional,
        model_id=model_id_of(graph),
        input=main,
        states=states,
        outputs=outputs,
        config={
            "model": asdict(cfg),
            "training": dict(ckpt.get("train_config") or {}),
            "checkpoint_kind": ckpt["kind"],
        },
        quality={k: float(v) for k, v in metrics.items() if k in ("test_accuracy", "valid_accuracy")},
        producer=_producer(),
        preprocessing=Preprocessing(scale=1 / 255, mean=PIXEL_MEAN, std=PIXEL_STD),
        labels=tuple(str(i) for i in range(cfg.num_classes)),
        notes={
            "input": "x: rows normalised as (pixel/255 - mean)/std; the runtime applies this from `preprocessing`",
            "outputs": "logits and probs (softmax) of the whole prefix fed so far",
        },
    )
    return graph, meta, _classifier_reference(model)


def _classifier_reference(model: RowLSTMClassifier) -> Reference:
    @torch.no_grad()
    def run(x: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        names = list(state)
        logits, new = model.forward_stream(
            torch.from_numpy(x), tuple(torch.from_numpy(np.array(state[n])) for n in names)
        )
        outputs = {"logits": logits.numpy(), "probs": torch.softmax(logits, -1).numpy()}
        return outputs, {n: t.numpy() for n, t in zip(names, new, strict=True)}

    def make_input(batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((batch, length, model.config.input_size)).astype(np.float32)

    return Reference(run=run, make_input=make_input)


def _language_model(ckpt: Mapping[str, Any]) -> tuple[onnx.ModelProto, ModelMetadata, Reference]:
    vocab = tuple(ckpt.get("vocabulary") or ())
    if "<unk>" not in vocab or "<eos>" not in vocab:
        raise CheckpointError("a ptb checkpoint must carry its vocabulary, with <unk> and <eos>")
    model = build_language_model(dict(ckpt))
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(f"checkpoint vocabulary has {len(vocab)} words, its model {model.config.vocab_size}")
    graph = language_model_graph(model)
    main, states, outputs = _io_specs(graph, "tokens")
    metrics = ckpt.get("metrics", {})
    meta = ModelMetadata(
        kind="language_model",
        causal=True,
        model_id=model_id_of(graph),
        input=main,
        states=states,
        outputs=outputs,
        config={
            "model": asdict(model.config),
            "training": dict(ckpt.get("train_config") or {}),
            "checkpoint_kind": "ptb",
        },
        quality={k: float(v) for k, v in metrics.items() if k in ("valid_perplexity", "test_perplexity")},
        producer=_producer(),
        vocabulary=vocab,
        unk_id=vocab.index("<unk>"),
        eos_id=vocab.index("<eos>"),
        notes={
            "input": "tokens: word ids into `vocabulary`; unknown words are <unk>, every line ends with <eos>",
            "outputs": "logits: unnormalised next-word scores at every position (softmax over the last axis); "
            "next_probs: the next word's probabilities after the last position",
        },
    )
    return graph, meta, _language_model_reference(model)


def _language_model_reference(model: WordLanguageModel) -> Reference:
    @torch.no_grad()
    def run(x: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        h, c = (torch.from_numpy(np.array(state[n])) for n in ("h", "c"))
        logits, (h, c) = model(torch.from_numpy(x), (h, c))  # (B, T, V)
        outputs = {"logits": logits.numpy(), "next_probs": torch.softmax(logits[:, -1], -1).numpy()}
        return outputs, {"h": h.numpy(), "c": c.numpy()}

    def make_input(batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, model.config.vocab_size, (batch, length), dtype=np.int64)

    return Reference(run=run, make_input=make_input, sequence_outputs=frozenset({"logits"}))


_BUILDERS = {"mnist-lstm": _classifier, "mnist-bilstm": _classifier, "ptb": _language_model}


def export_checkpoint(checkpoint: str | os.PathLike[str], output: str | os.PathLike[str]) -> ExportResult:
    """Export ``checkpoint`` to ``output`` after validating it against PyTorch."""
    ckpt = load_checkpoint(checkpoint)
    builder = _BUILDERS.get(ckpt["kind"])
    if builder is None:
        raise CheckpointError(f"cannot export a checkpoint of kind {ckpt['kind']!r}; known kinds: {sorted(_BUILDERS)}")
    graph, meta, reference = builder(ckpt)
    return write_validated(graph, meta, reference, Path(output))


def write_validated(graph: onnx.ModelProto, meta: ModelMetadata, reference: Reference, output: Path) -> ExportResult:
    """Attach ``meta``, write to a temporary file, validate, then rename to ``output``."""
    del graph.metadata_props[:]
    graph.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
    with atomic_output(output) as tmp:
        tmp.write_bytes(graph.SerializeToString())
        report = validate_export(tmp, reference, label=output.name)
    return ExportResult(output, meta, report, output.stat().st_size)
