"""Export of the ``word_lm`` kind: token ids in, next-token scores out, with the vocabulary in the metadata.

A model of words (PTB, or any text split on whitespace) writes ``"tokens": "words"``, a model of
characters ``"tokens": "chars"`` (docs/metadata.md, section 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from rnnedge.errors import CheckpointError
from rnnedge.training.models import RecurrentLanguageModel

from .graphs import language_model_graph
from .kinds import ExportKind, register
from .quality import language_model_quality
from .reference import torch_reference
from .structure import read_structure
from .validate import Reference, magnitude, unit

__all__ = ["KIND", "language_model_fields", "language_model_reference"]


_QUALITY_KEYS = ("valid_perplexity", "test_perplexity", "valid_bpc", "test_bpc")


def language_model_fields(ckpt: Mapping[str, Any], model: RecurrentLanguageModel) -> dict[str, Any]:
    """The language model's own metadata fields: the checkpoint's vocabulary with its <unk> and <eos>, quality.

    ``tokens`` says how text is split: ``"words"`` or ``"chars"``.
    """
    tokens = ckpt.get("tokens", "words")
    if tokens not in ("words", "chars"):
        raise CheckpointError(f"a {ckpt['kind']} checkpoint's tokens must be 'words' or 'chars', got {tokens!r}")
    vocab = tuple(ckpt.get("vocabulary") or ())
    if "<unk>" not in vocab or "<eos>" not in vocab:
        raise CheckpointError(f"a {ckpt['kind']} checkpoint must carry its vocabulary, with <unk> and <eos>")
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(f"checkpoint vocabulary has {len(vocab)} words, its model {model.config.vocab_size}")
    metrics = ckpt.get("metrics") or {}
    chars = tokens == "chars"
    unit = "character" if chars else "word"
    if chars:
        long = [w for w in vocab if len(w) != 1 and w not in ("<unk>", "<eos>")]
        if long:
            raise CheckpointError(f"a character model's vocabulary holds entries of other lengths: {long[:5]}")
    return {
        "tokens": tokens,
        "kind": "language_model",
        "causal": True,
        "quality": {k: float(v) for k, v in metrics.items() if k in _QUALITY_KEYS},
        "vocabulary": vocab,
        "unk_id": vocab.index("<unk>"),
        "eos_id": vocab.index("<eos>"),
        "notes": {
            "input": f"tokens: {unit} ids into `vocabulary`; unknown {unit}s are <unk>, every line ends with <eos>",
            "outputs": f"logits: unnormalised next-{unit} scores at every position (softmax over the last axis); "
            f"next_probs: the next {unit}'s probabilities after the last position",
            "quality": "valid_perplexity, test_perplexity: measured by training, in PyTorch"
            + ("; *_bpc: bits per character, log2 of the perplexity" if chars else ""),
        },
    }


def language_model_reference(model: nn.Module) -> Reference:
    """PyTorch's forward, in float32 and float64, with each quantity's scale (state ``h``, ``c``; a GRU's ``h``).

    ``model`` is one of rnnedge's language models: ``forward(tokens, state) -> (logits, state)``.
    """
    net = read_structure(model)
    names = net.state_names

    def forward(
        module: nn.Module, x: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        logits, new = module(x, tuple(state[n] for n in names))  # (B, T, V)
        outputs = {"logits": logits, "next_probs": torch.softmax(logits[:, -1], -1)}
        return outputs, dict(zip(names, new, strict=True))

    assert net.embedding is not None  # every language model of rnnedge's embeds its tokens
    vocab = net.embedding.num_embeddings

    def make_input(batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, vocab, (batch, length), dtype=np.int64)

    scales = {"logits": magnitude, "next_probs": unit, "h": unit, "c": magnitude}
    return torch_reference(model, forward, make_input, sequence_outputs={"logits"}, scales=scales)


def language_model_file_graph(model: nn.Module) -> onnx.ModelProto:
    """The graph of rnnedge's own language model, its parts (and cell) read off its submodules."""
    return language_model_graph(read_structure(model))


KIND = register(
    ExportKind(
        name="language_model",
        main_input="tokens",
        graph=language_model_file_graph,
        reference=language_model_reference,
        describe=language_model_fields,
        measure=language_model_quality,
    )
)
