"""fp16 variants for the CUDA provider: float16 weights and arithmetic, float32 at the edges.

Every float initializer becomes float16 and every float tensor inside the graph follows;
graph inputs and outputs stay float32 (a Cast at each edge), so the runtime's contract,
its states and every caller's code are the same as for the float model. onnxruntime's
CPU LSTM kernel has no float16, so such a file runs on the CUDA provider only; the
runtime refuses it on the CPU with a clear message.

No CUDA here means the fp16 arithmetic cannot be checked at export. What is checked and
recorded instead is the cost of the float16 weights: the same graph with its weights
rounded to float16 but computed in float32, validated against the float model and
measured on the test data (``quality`` keys ``*_fp16_weights``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rnnedge.errors import ConfigError

if TYPE_CHECKING:
    from .results import ExportResult
    from .variants import QualityFn

__all__ = ["convert_fp16", "fp16_graph", "round_weights_to_fp16"]


def _with_float_weights(model: onnx.ModelProto, dtype: type[np.floating]) -> onnx.ModelProto:
    """A copy of ``model`` whose float32 initializers went through float16 and are stored as ``dtype``."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for init in copy.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            w = numpy_helper.to_array(init).astype(np.float16).astype(dtype)
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    return copy


def round_weights_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float32 copy of ``model`` whose float weights carry only float16 precision."""
    return _with_float_weights(model, np.float32)


def _to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """float16 inside, float32 at the graph's inputs and outputs."""
    half = _with_float_weights(model, np.float16)
    g = half.graph
    casts_in, casts_out = [], []
    for value in g.input:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = f"{value.name}__fp16"
            for node in g.node:
                node.input[:] = [inner if i == value.name else i for i in node.input]
            casts_in.append(helper.make_node("Cast", [value.name], [inner], to=TensorProto.FLOAT16))
    for value in g.output:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = f"{value.name}__fp16"
            for node in g.node:
                node.output[:] = [inner if o == value.name else o for o in node.output]
                node.input[:] = [inner if i == value.name else i for i in node.input]
            casts_out.append(helper.make_node("Cast", [inner], [value.name], to=TensorProto.FLOAT))
    for node in g.node:  # Casts to float inside the graph (e.g. a step count) now cast to float16
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    nodes = [*casts_in, *g.node, *casts_out]
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return half


def fp16_graph(float_path: Path, model: onnx.ModelProto, kind: str) -> tuple[onnx.ModelProto, list[str]]:
    """The fp16 graph of a float model (its metadata still the float model's) and its problems.

    :class:`ConfigError` for a classifier: its state counts rows and sums outputs, which in
    float16 stops counting at 2048 and drifts, and its weights (0.3 MB) gain nothing from halving.
    """
    if kind != "language_model":
        raise ConfigError(
            f"{float_path.name}: fp16 variants are for language models; a {kind}'s row count and "
            "running sum need float32 (use the float32 or int8 file)"
        )
    half = _to_fp16(model)
    problems = []
    try:  # every node's types must agree now that the inside is float16
        onnx.shape_inference.infer_shapes(half, check_type=True, strict_mode=True)
    except Exception as e:  # onnx raises its own InferenceError and others
        problems.append(f"type check of the fp16 graph failed: {str(e).strip().splitlines()[0]}")
    if not any(i.data_type == TensorProto.FLOAT16 for i in half.graph.initializer):
        problems.append("no float16 weights in the converted graph")
    return half, problems


def convert_fp16(
    float_path: str | os.PathLike[str], output: str | os.PathLike[str], quality: QualityFn | None = None
) -> ExportResult:
    """Write the fp16 (CUDA) variant of ``float_path`` to ``output`` atomically, with its weight-rounding cost."""
    from .variants import VARIANTS, make_variant

    return make_variant(VARIANTS["fp16"], Path(float_path), Path(output), quality)
