"""fp16 variants: float16 inside, float32 at the edges, weight-rounding cost measured, CPU refused."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from rnnedge.export.half import convert_fp16
from rnnedge.export.quality import measure_quality
from rnnedge.runtime import ConfigError, ProviderError, load


def _types(model: onnx.ModelProto) -> tuple[set[int], set[int]]:
    edges = {v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]}
    weights = {i.data_type for i in model.graph.initializer}
    return edges, weights


def test_fp16_variant_keeps_the_contract(tiny_lm_onnx: Path, tmp_path: Path) -> None:
    float_path = tiny_lm_onnx
    result = convert_fp16(float_path, tmp_path / "m.fp16.onnx")
    model = onnx.load(str(result.path))
    edges, weights = _types(model)
    assert TensorProto.FLOAT16 not in edges  # callers still pass and get float32 (and int64 tokens)
    assert TensorProto.FLOAT16 in weights and TensorProto.FLOAT not in weights
    assert "LSTM" in {n.op_type for n in model.graph.node}
    assert result.metadata.variant == "fp16"
    assert result.size_bytes < 0.75 * float_path.stat().st_size
    assert result.parity.worst < 0.05  # float16 weights in float32 arithmetic vs the float model


def test_fp16_quality_is_measured_with_rounded_weights(tiny_lm_onnx: Path, ptb_data: Path, tmp_path: Path) -> None:
    result = convert_fp16(tiny_lm_onnx, tmp_path / "m.fp16.onnx", partial(measure_quality, data=ptb_data))
    q = result.metadata.quality
    assert {"test_perplexity_fp16_weights", "float_test_perplexity", "test_perplexity_fp16_weights_change"} <= set(q)
    assert abs(q["test_perplexity_fp16_weights_change"]) < 0.01 * q["float_test_perplexity"]


def test_classifiers_get_no_fp16_variant(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="row count and running sum need float32"):
        convert_fp16(tiny_onnx, tmp_path / "m.fp16.onnx")
    assert not (tmp_path / "m.fp16.onnx").exists()


def test_fp16_is_refused_on_the_cpu(tiny_lm_onnx: Path, tmp_path: Path) -> None:
    path = convert_fp16(tiny_lm_onnx, tmp_path / "m.fp16.onnx").path
    with pytest.raises(ProviderError, match=r"fp16 .* CUDA"):
        load(path)
    with load(tiny_lm_onnx) as float_model:  # the float file is untouched and still fine
        assert np.isfinite(float_model.stream().feed([1, 2])).all()


def test_info_describes_an_fp16_file_on_the_cpu(tiny_lm_onnx: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rnnedge.cli.main import cli
    from rnnedge.runtime import read_metadata

    path = convert_fp16(tiny_lm_onnx, tmp_path / "m.fp16.onnx").path
    assert read_metadata(path).variant == "fp16"
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 0 and "variant: fp16" in result.output
