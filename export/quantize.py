"""int8 variants: dynamic quantization of an exported float model, checked and re-described.

onnxruntime's ``quantize_dynamic`` turns each native ``LSTM`` node into
``DynamicQuantizeLSTM`` and each weight product into ``MatMulInteger``. With some
export graphs it silently leaves the LSTM in float32, so the result is inspected and
refused if any float ``LSTM`` node remains. The measured quality of the int8 model, and
its change against the float model, go into the new file's metadata.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from rnnedge.runtime import load
from rnnedge.runtime.errors import ExportValidationError
from rnnedge.runtime.metadata import METADATA_KEY, ModelMetadata

from .exporter import ExportResult, model_id_of
from .validate import ParityReport, check_graph_structure

__all__ = ["QualityFn", "quantize_int8"]

# Measures a model file on held-out data: e.g. {"test_accuracy": 0.99} or {"test_perplexity": 110.2}.
QualityFn = Callable[[Path], dict[str, float]]


def _read_metadata(model: onnx.ModelProto) -> ModelMetadata:
    props = {p.key: p.value for p in model.metadata_props}
    return ModelMetadata.from_json(props[METADATA_KEY])


def quantize_int8(
    float_path: str | os.PathLike[str], output: str | os.PathLike[str], quality: QualityFn | None = None
) -> ExportResult:
    """Write the int8 variant of ``float_path`` to ``output`` (atomically), with its measured quality."""
    float_path, output = Path(float_path), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic logs advice at WARNING on the root logger
        try:
            quantize_dynamic(float_path, tmp, weight_type=QuantType.QInt8)
        finally:
            logging.getLogger().setLevel(quiet)
        model = onnx.load(str(tmp))
        ops = [n.op_type for n in model.graph.node]
        problems = check_graph_structure(model)
        if "LSTM" in ops or "DynamicQuantizeLSTM" not in ops:
            problems.append(f"quantization left the LSTM in float32 (nodes: {sorted(set(ops))})")
        if problems:
            raise ExportValidationError(f"{float_path.name}: int8 quantization failed", problems)
        meta = _read_metadata(model)
        float_meta = meta
        meta = replace(meta, variant="int8", model_id=model_id_of(model))
        if quality is not None:
            measured = quality(tmp)
            before = {f"float_{k}": v for k, v in float_meta.quality.items()}
            deltas = {f"{k}_change": measured[k] - float_meta.quality[k] for k in measured if k in float_meta.quality}
            meta = replace(meta, quality={**before, **measured, **deltas})
        del model.metadata_props[:]
        model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
        onnx.save(model, str(tmp))
        load(tmp).close()  # the runtime must accept what we ship
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(output, meta, ParityReport(), output.stat().st_size)
