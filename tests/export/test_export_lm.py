"""Exporting the PTB language model: parity with PyTorch, the metadata contract, tampering caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from rnnedge.errors import CheckpointError, ExportValidationError
from rnnedge.export.exporter import export_checkpoint
from rnnedge.runtime import LanguageModel, load
from rnnedge.training.checkpoint import load_checkpoint, save_checkpoint


def test_export_passes_parity_and_describes_itself(tiny_lm_onnx: Path, tiny_lm_checkpoint: Path) -> None:
    ckpt = load_checkpoint(tiny_lm_checkpoint)
    model = load(tiny_lm_onnx)
    assert isinstance(model, LanguageModel)
    meta = model.metadata
    assert meta.kind == "language_model" and meta.causal
    assert list(meta.vocabulary or ()) == ckpt["vocabulary"]
    assert meta.vocabulary[meta.unk_id] == "<unk>" and meta.vocabulary[meta.eos_id] == "<eos>"
    assert set(meta.quality) == {"valid_perplexity", "test_perplexity"}
    assert meta.config["model"]["hidden_size"] == 32
    assert meta.input.name == "tokens" and meta.input.dtype == "int64"
    assert [s.name for s in meta.states] == ["h", "c"]
    ops = [n.op_type for n in onnx.load(str(tiny_lm_onnx)).graph.node]
    assert ops.count("LSTM") == 1 and "Loop" not in ops
    outputs, state = model.step(np.zeros((3, 7), np.int64), model.init_state(3))
    assert outputs["logits"].shape == (3, 7, 10_000) and outputs["logits"].dtype == np.float32
    assert state["h"].shape == state["c"].shape == (1, 3, 32)
    model.close()


def test_tampered_weights_are_caught(tiny_lm_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from rnnedge.export import kinds, word_lm

    real = word_lm.KIND.graph

    def tampered(model):
        graph = real(model)
        for init in graph.graph.initializer:
            if init.name == "decoder.bias":
                bias = onnx.numpy_helper.to_array(init).copy()
                bias[:10] += 0.05
                init.CopyFrom(onnx.numpy_helper.from_array(bias, init.name))
        return graph

    monkeypatch.setitem(kinds._KINDS, "language_model", replace(word_lm.KIND, graph=tampered))
    target = tmp_path / "bad.onnx"
    with pytest.raises(ExportValidationError, match="logits differs") as info:
        export_checkpoint(tiny_lm_checkpoint, target)
    assert info.value.mismatches and not target.exists() and not list(tmp_path.iterdir())


def test_checkpoint_without_vocabulary_is_refused(tiny_lm_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(tiny_lm_checkpoint)
    del ckpt["vocabulary"]
    save_checkpoint(tmp_path / "novocab.pt", ckpt)
    with pytest.raises(CheckpointError, match="vocabulary"):
        export_checkpoint(tmp_path / "novocab.pt", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    assert isinstance(ckpt["model"]["embedding.weight"], torch.Tensor)


def test_tied_weights_are_stored_once(ptb_data: Path, tmp_path: Path, tiny_lm_onnx: Path) -> None:
    """With tied weights the embedding doubles as the output layer: one copy in the file, parity kept."""
    from conftest import train_tiny_lm

    from rnnedge.export.quantize import quantize_int8

    checkpoint = train_tiny_lm(ptb_data, tmp_path / "tied", steps=5, hidden_size=32, tie_weights=True)
    result = export_checkpoint(checkpoint, tmp_path / "tied.onnx")
    graph = onnx.load(str(result.path)).graph
    matrices = [i.name for i in graph.initializer if len(i.dims) == 2 and 10_000 in i.dims]
    assert matrices == ["embedding.weight"]
    assert result.size_bytes < 0.6 * tiny_lm_onnx.stat().st_size  # the untied model holds two such matrices
    assert result.parity.checks > 0
    int8 = quantize_int8(result.path, tmp_path / "tied.int8.onnx")
    with load(int8.path) as model:
        assert np.isfinite(model.stream().feed("the market")).all()
