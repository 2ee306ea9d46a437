"""The variants written beside a float model (int8 for the CPU, fp16 for CUDA): one place makes them all.

A :class:`Variant` only says how its graph is made from the float file (:mod:`.quantize`,
:mod:`.half`) and, when the variant cannot run here, which float32 stand-in computes what
it computes. Everything else is shared by :func:`make_variant`: the structure checks, the
drift from the float model (recorded, not gated, except that outputs must be finite), the
quality measured on the file (or its stand-in) exactly as the command line measures it,
the float model measured the same way, the metadata, and the atomic write.

Quality keys in a variant's metadata: ``float_<key>`` (the float file, measured the same
way; keys that only training measures, such as ``float_valid_accuracy``, are copied from the
float file), ``<key><suffix>`` and ``<key><suffix>_change`` (variant minus float), where
the suffix is empty for int8 and ``_fp16_weights`` for fp16. ``notes["quality"]`` says how
each was measured, so that every number can be reproduced with the command line.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from rnnedge.data.atomic import atomic_output
from rnnedge.errors import ExportValidationError
from rnnedge.runtime import load
from rnnedge.runtime.metadata import ModelMetadata

from .half import fp16_graph, round_weights_to_fp16
from .metadata import model_id_of, read_graph_metadata, write_graph_metadata
from .quality import Measured
from .quantize import int8_graph
from .results import ExportResult
from .validate import Mismatch, MismatchKind, ParityError, ParityReport, check_graph_structure

__all__ = ["VARIANTS", "QualityFn", "Variant", "make_variant", "variant_drift", "variant_quality"]

# Measures a model file on held-out data as the command line does (rnnedge.export.quality.measure_quality).
QualityFn = Callable[[Path], Measured]


@dataclass(frozen=True)
class Variant:
    """One kind of derived file.

    ``convert(float_path, float_graph, kind)`` returns the variant's graph (metadata still the
    float model's) and the problems found in it, or raises :class:`~rnnedge.errors.ConfigError`
    when models of that runtime ``kind`` get no such variant. ``stand_in(float_graph)`` is a
    float32 graph computing what the variant computes, for variants that cannot run on this
    machine (None: the variant itself runs here). ``suffix`` marks quality measured on a stand-in.
    """

    name: str
    convert: Callable[[Path, onnx.ModelProto, str], tuple[onnx.ModelProto, list[str]]]
    stand_in: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None
    suffix: str = ""
    measured_on: str = "this file"


VARIANTS: dict[str, Variant] = {
    "int8": Variant("int8", lambda path, graph, kind: int8_graph(path)),
    "fp16": Variant(
        "fp16",
        fp16_graph,
        stand_in=round_weights_to_fp16,
        suffix="_fp16_weights",
        measured_on=(
            "the float32 file with its weights rounded to float16, computed in float32 on the CPU "
            "(the fp16 file itself needs the CUDA provider)"
        ),
    ),
}


def variant_drift(float_path: Path, variant_path: Path, variant: str = "int8", seed: int = 0) -> ParityReport:
    """How far a variant strays: from the float model, and between streamed and whole-sequence runs.

    Recorded, not gated (quantization error is expected; the measured quality is the gate),
    except that every output must be finite.
    """
    report = ParityReport()
    rng = np.random.default_rng(seed)
    with load(float_path) as reference, load(variant_path) as model:
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
                report.failures.append(
                    Mismatch(MismatchKind.NOT_FINITE, variant, f"output {name}", detail="is not finite")
                )
            report.record(f"{variant} vs float", f"{name} {variant} vs float", value, want[name])
            last = value[:, -streamed[name].shape[1] :] if value.ndim == 3 else value
            report.record(f"{variant} streamed", f"{name} streamed vs whole", streamed[name], last)
    if report.failures:
        raise ParityError(f"{variant_path.name}: {variant} model is unusable", report.failures)
    return report


def variant_quality(
    variant: Variant, float_meta: ModelMetadata, baseline: Measured | None, measured: Measured | None
) -> tuple[dict[str, float], str]:
    """The variant's quality keys (see the module's docstring) and the note saying how they were measured."""
    quality = {f"float_{k}": v for k, v in float_meta.quality.items()}
    if measured is None or baseline is None:
        return quality, f"float_*: the float32 model's, as its file records them; {variant.name} not measured"
    notes = []
    for key, value in measured.values.items():
        quality[f"float_{key}"] = baseline.values[key]
        quality[f"{key}{variant.suffix}"] = value
        # Rounded so that a difference of two accuracies reads 0.0003, not 0.000300000000000078.
        quality[f"{key}{variant.suffix}_change"] = round(value - baseline.values[key], 10)
        how = measured.how.get(key, "")
        notes.append(
            f"{key}{variant.suffix}: {how}, on {variant.measured_on}; float_{key}: the same, on the float32 file; "
            f"{key}{variant.suffix}_change: the difference"
        )
    return quality, "; ".join(notes)


def make_variant(
    variant: Variant,
    float_path: Path,
    output: Path,
    quality: QualityFn | None = None,
    baseline: Callable[[], Measured] | None = None,
) -> ExportResult:
    """Write ``variant`` of the exported float file ``float_path`` to ``output`` (atomically).

    ``quality`` measures a file; ``baseline()``, if given, returns the float file's measure
    (so that one export measures it once for all its variants). Raises ``ConfigError`` when this kind of
    model gets no such variant and :class:`~rnnedge.errors.ExportValidationError` when the
    result is broken; nothing is written then.
    """
    float_graph = onnx.load(str(float_path))
    float_meta = read_graph_metadata(float_graph, float_path.name)
    graph, problems = variant.convert(float_path, float_graph, float_meta.kind)
    problems = check_graph_structure(graph) + problems
    if problems:
        raise ExportValidationError(f"{float_path.name}: {variant.name} conversion failed", problems)
    runnable = variant.stand_in(float_graph) if variant.stand_in is not None else graph
    with tempfile.TemporaryDirectory() as tmp_dir:
        run_path = Path(tmp_dir) / f"{variant.name}.onnx"
        onnx.save(runnable, str(run_path))
        label = variant.name if variant.stand_in is None else f"{variant.name} weights"
        drift = variant_drift(float_path, run_path, label)
        measured = quality(run_path) if quality is not None else None
    float_measured = None
    if quality is not None:
        float_measured = baseline() if baseline is not None else quality(float_path)
    values, how = variant_quality(variant, float_meta, float_measured, measured)
    meta = replace(
        float_meta,
        variant=variant.name,
        model_id=model_id_of(graph),
        quality=values,
        notes={**float_meta.notes, "quality": how},
    )
    write_graph_metadata(graph, meta)
    with atomic_output(output) as tmp:
        onnx.save(graph, str(tmp))
    return ExportResult(output, meta, drift, output.stat().st_size)
