"""rnnedge.bench: the timing helpers, the hand-written MatMul model, and the model arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnedge.bench import (
    GemmShape,
    bare_session_from_bytes,
    flops_per_position,
    format_table,
    interleaved,
    lstm_gemm_shapes,
    matmul_model,
    measure_limits,
    summarize,
    weights_per_step,
)
from rnnedge.runtime import load


def test_summarize_and_table() -> None:
    s = summarize([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (s.median, s.q1, s.q3, s.iqr, s.samples) == (3.0, 2.0, 4.0, 2.0, 5)
    assert summarize([7.0]).iqr == 0
    with pytest.raises(ValueError):
        summarize([])
    table = format_table({"a": s, "b": summarize([6.0])}, "a", scale=1.0, unit="s")
    assert table.splitlines()[2].split()[-1] == "2.00"


def test_interleaved_runs_every_contender_each_round() -> None:
    calls: list[str] = []
    samples = interleaved({"x": lambda: calls.append("x"), "y": lambda: calls.append("y")}, rounds=3, target_s=1e-4)
    assert {k: len(v) for k, v in samples.items()} == {"x": 3, "y": 3}
    assert all(t > 0 for v in samples.values() for t in v)
    with pytest.raises(ValueError):
        interleaved({"x": lambda: None}, rounds=0)


def test_matmul_model_is_valid_onnx_and_multiplies() -> None:
    onnx = pytest.importorskip("onnx")
    rng = np.random.default_rng(0)
    weights = rng.random((5, 3), dtype=np.float32)
    data = matmul_model(4, weights)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    a = rng.random((4, 5), dtype=np.float32)
    (y,) = bare_session_from_bytes(data, 1).run(None, {"a": a})
    np.testing.assert_allclose(y, a @ weights, rtol=1e-5)


def _weight_bytes_without_embedding(path: Path) -> int:
    """Bytes of the file's weights (integer constants left out), the embedding table left out."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    tables = {n.input[0] for n in model.graph.node if n.op_type == "Gather" and n.input[0] in arrays}
    return sum(a.nbytes for name, a in arrays.items() if a.dtype != np.int64 and name not in tables)


@pytest.mark.parametrize("fixture", ["tiny_onnx", "tiny_lm_onnx"])
def test_weights_per_step_matches_the_file(fixture: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(fixture)
    with load(path) as model:
        meta = model.metadata
    assert weights_per_step(meta) == _weight_bytes_without_embedding(path)
    cfg = meta.config["model"]
    h = cfg["hidden_size"]
    if meta.kind == "language_model":
        assert flops_per_position(meta) == cfg["num_layers"] * 2 * 4 * h * 2 * h + 2 * h * cfg["vocab_size"]
        shapes = lstm_gemm_shapes(meta, 20, 35)
        assert shapes[-1] == GemmShape("output projection", 700, h, cfg["vocab_size"])
    else:
        assert flops_per_position(meta) == 2 * 4 * h * (cfg["input_size"] + h)
        assert lstm_gemm_shapes(meta, 256, 28) == [
            GemmShape("layer 0 input", 256 * 28, cfg["input_size"], 4 * h),
            GemmShape("layer 0 recurrent", 256, h, 4 * h, 28),
        ]


def test_measure_limits_small() -> None:
    shapes = [GemmShape("a", 8, 16, 32), GemmShape("b", 8, 16, 32)]
    lim = measure_limits(1 << 20, shapes, threads=1, min_time=0.01, large_bytes=4 << 20)
    assert lim["gemm_peak_gflops"] > 0
    assert list(lim["gemm_gflops_shapes"]) == ["a, b (8×16 @ 16×32)"]
    bw = lim["read_bandwidth_gbs_weights"]
    assert set(bw["kernels"]) == {"numpy dot", "numpy gemv", "onnxruntime gemv"} and bw["kernel"] in bw["kernels"]
    assert 0 < lim["step_bound_s"] <= lim["step_bound_median_bw_s"]
    assert lim["copy_bandwidth_gbs_large"]["best"] > 0
