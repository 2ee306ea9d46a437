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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from rnnedge.data.atomic import atomic_output
from rnnedge.errors import ExportValidationError
from rnnedge.runtime import load
from rnnedge.runtime.metadata import METADATA_KEY, ModelMetadata

from .exporter import ExportResult, model_id_of
from .validate import ParityReport, check_graph_structure

__all__ = ["QualityFn", "quantize_int8", "variant_drift"]

# Measures a model file on held-out data: e.g. {"test_accuracy": 0.99} or {"test_perplexity": 110.2}.
QualityFn = Callable[[Path], dict[str, float]]


def _read_metadata(model: onnx.ModelProto) -> ModelMetadata:
    props = {p.key: p.value for p in model.metadata_props}
    return ModelMetadata.from_json(props[METADATA_KEY])


def variant_drift(float_path: Path, int8_path: Path, variant: str = "int8", seed: int = 0) -> ParityReport:
    """How far a variant strays: from the float model, and between streamed and whole-sequence runs.

    Recorded, not gated (quantization error is expected; the measured quality is the gate),
    except that every output must be finite.
    """
    report = ParityReport()
    rng = np.random.default_rng(seed)
    with load(float_path) as reference, load(int8_path) as model:
        spec = model.metadata.input
        if spec.dtype == "int64":
            vocab = len(model.metadata.vocabulary or ())
            x: np.ndarray = rng.integers(0, vocab, (3, 40), dtype=np.int64)
        else:
            x = rng.standard_normal((3, 40, int(spec.shape[-1]))).astype(np.float32)
        want, _ = reference.step(x, reference.init_state(3))
        whole, _ = model.step(x, model.init_state(3))
        state = model.init_state(3)
        for lo in range(0, 40, 9):
            streamed, state = model.step(x[:, lo : lo + 9], state)
        for name, value in whole.items():
            if not np.isfinite(value).all():
                report.failures.append(f"{variant} output {name} is not finite")
            report.record(f"{variant} vs float", f"{name} {variant} vs float", value, want[name])
            last = value[:, -streamed[name].shape[1] :] if value.ndim == 3 else value
            report.record(f"{variant} streamed", f"{name} streamed vs whole", streamed[name], last)
    if report.failures:
        raise ExportValidationError(f"{int8_path.name}: {variant} model is unusable", report.failures)
    return report


def quantize_int8(
    float_path: str | os.PathLike[str], output: str | os.PathLike[str], quality: QualityFn | None = None
) -> ExportResult:
    """Write the int8 variant of ``float_path`` to ``output`` (atomically), with its measured quality."""
    float_path, output = Path(float_path), Path(output)
    with atomic_output(output) as tmp:
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
        float_meta = _read_metadata(model)
        meta = replace(float_meta, variant="int8", model_id=model_id_of(model))
        if quality is not None:
            measured = quality(tmp)
            before = {f"float_{k}": v for k, v in float_meta.quality.items()}
            deltas = {f"{k}_change": measured[k] - float_meta.quality[k] for k in measured if k in float_meta.quality}
            meta = replace(meta, quality={**before, **measured, **deltas})
        del model.metadata_props[:]
        model.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
        onnx.save(model, str(tmp))
        drift = variant_drift(float_path, tmp)
    return ExportResult(output, meta, drift, output.stat().st_size)
