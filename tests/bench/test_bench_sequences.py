"""The bench's cost model on sequence classifiers (GRU gates, several layers, both directions)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sequence_models import prebuilt_sequence_models, write_sequence_models

from rnnedge.bench.cost import weights_per_step
from rnnedge.runtime import read_metadata


def test_weights_per_step_counts_every_weight_of_gru_and_lstm_layers(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="reading the initializers needs onnx (the train extra)")
    from onnx import numpy_helper

    files = prebuilt_sequence_models() or write_sequence_models(tmp_path)
    for path in files.values():
        weights = [
            numpy_helper.to_array(t)
            for t in onnx.load(str(path)).graph.initializer
            if t.name.endswith((".W", ".R", ".B")) or t.name.startswith("head.")
        ]
        assert weights_per_step(read_metadata(path)) == sum(w.nbytes for w in weights), path.name
