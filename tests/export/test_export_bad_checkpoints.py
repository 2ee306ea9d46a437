"""Export of checkpoints that must not become model files (docs/bad_input.md): a typed error naming the
checkpoint or the target, and nothing written (no target, no temporary file, an earlier file untouched).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch

from rnnedge.errors import CheckpointError, ExportValidationError
from rnnedge.export.exporter import build_export, export_checkpoint, write_validated
from rnnedge.training.checkpoint import load_checkpoint, save_checkpoint


class _TouchOnLoad:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _export_fails(checkpoint: Path, error: type[Exception], *names: str) -> None:
    target = checkpoint.parent / "out" / "model.onnx"
    target.parent.mkdir()
    target.write_bytes(b"an earlier good file")
    with pytest.raises(error) as info:
        export_checkpoint(checkpoint, target)
    for name in names:
        assert name in str(info.value), str(info.value)
    assert target.read_bytes() == b"an earlier good file"
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]


def test_a_malicious_checkpoint_is_never_run_by_export(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"kind": "mnist-lstm", "model": _TouchOnLoad(marker), "config": {}}, tmp_path / "evil.pt")
    _export_fails(tmp_path / "evil.pt", CheckpointError, "evil.pt", "refused by the safe loader")
    assert not marker.exists()


def test_weights_that_are_not_finite_are_not_exported(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(tiny_checkpoint)
    weights = dict(ckpt["model"])
    weights["rnn.weight_hh_l0"] = weights["rnn.weight_hh_l0"].clone()
    weights["rnn.weight_hh_l0"][0, 0] = math.inf
    save_checkpoint(tmp_path / "diverged.pt", {**ckpt, "model": weights})
    _export_fails(tmp_path / "diverged.pt", CheckpointError, "NaN or infinity in rnn.weight_hh_l0")


def test_a_vocabulary_that_does_not_fit_the_model(tiny_lm_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(tiny_lm_checkpoint)
    save_checkpoint(tmp_path / "short-vocab.pt", {**ckpt, "vocabulary": ckpt["vocabulary"][:-1]})
    _export_fails(tmp_path / "short-vocab.pt", CheckpointError, "vocabulary has 9999 words, its model 10000")


def test_a_checkpoint_whose_stored_config_is_out_of_range(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tmp_path / "odd.pt", {**ckpt, "config": {**ckpt["config"], "num_classes": 0}})
    _export_fails(tmp_path / "odd.pt", CheckpointError, "num_classes=0", "an int >= 2")


def test_a_parity_failure_names_the_target_not_the_temporary_file(tiny_checkpoint: Path, tmp_path: Path) -> None:
    built = build_export(load_checkpoint(tiny_checkpoint))
    graph, meta, reference = built.graph, built.metadata, built.reference
    head = next(t for t in graph.graph.initializer if t.name == "head.weight")
    weight = onnx.numpy_helper.to_array(head).copy()
    weight[0] *= -1
    head.CopyFrom(onnx.numpy_helper.from_array(weight, "head.weight"))
    with pytest.raises(ExportValidationError) as info:
        write_validated(graph, meta, reference, tmp_path / "model.onnx")
    assert str(info.value).startswith("model.onnx: the exported graph does not match PyTorch")
    assert ".tmp" not in str(info.value)
    assert not list(tmp_path.iterdir())
