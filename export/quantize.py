"""int8 graphs: onnxruntime's dynamic quantization of an exported float model, checked.

``quantize_dynamic`` turns each native ``LSTM`` node into ``DynamicQuantizeLSTM`` and each
weight product into ``MatMulInteger``. With some export graphs it silently leaves the LSTM
in float32, so the result is inspected and refused if any float ``LSTM`` node remains. The
file, its metadata and its measured quality are made by :mod:`rnnedge.export.variants`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from rnnedge.errors import ConfigError

if TYPE_CHECKING:
    from .results import ExportResult
    from .variants import QualityFn

__all__ = ["int8_graph", "quantize_int8"]


def int8_graph(float_path: Path) -> tuple[onnx.ModelProto, list[str]]:
    """The dynamically quantized graph of ``float_path`` (its metadata still the float model's) and its problems.

    A GRU model gets none (:class:`~rnnedge.errors.ConfigError`): onnxruntime has an int8 kernel for
    LSTM (``DynamicQuantizeLSTM``) but none for GRU, and quantizing only the small output layer would
    label an essentially float model int8.
    """
    if any(n.op_type == "GRU" for n in onnx.load(str(float_path), load_external_data=False).graph.node):
        raise ConfigError(
            f"{float_path.name}: no int8 variant for GRU cells: onnxruntime has no int8 GRU kernel (only "
            "DynamicQuantizeLSTM for LSTM cells), and quantizing the output layer alone would label a float model "
            "int8; train with --cell lstm for an int8 file"
        )
    with tempfile.TemporaryDirectory() as tmp_dir:
        out = Path(tmp_dir) / "int8.onnx"
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic logs advice at WARNING on the root logger
        try:
            quantize_dynamic(float_path, out, weight_type=QuantType.QInt8)
        finally:
            logging.getLogger().setLevel(quiet)
        model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    problems = []
    if "LSTM" in ops or "DynamicQuantizeLSTM" not in ops:
        problems.append(f"quantization left the LSTM in float32 (nodes: {sorted(set(ops))})")
    return model, problems


def quantize_int8(
    float_path: str | os.PathLike[str], output: str | os.PathLike[str], quality: QualityFn | None = None
) -> ExportResult:
    """Write the int8 variant of ``float_path`` to ``output`` (atomically), with its measured quality."""
    from .variants import VARIANTS, make_variant

    return make_variant(VARIANTS["int8"], Path(float_path), Path(output), quality)
