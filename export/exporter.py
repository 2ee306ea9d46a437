"""Checkpoint -> one validated, self-describing ``.onnx`` file, and its variants beside it.

:func:`export_model` is the one export: the command line calls it for a single file, and
the batch export (:mod:`.batch`) for each model it finds. It writes the float file
(:func:`export_checkpoint`) and then each requested variant (:mod:`.variants`) from it.

The float file is written to a temporary name beside the target, validated through the
runtime, and only then renamed into place: a failed export leaves no partial file and
never overwrites an earlier good one. Nothing here knows a kind by name: the checkpoint's
kind is looked up in :mod:`.kinds`, the network rebuilt by :mod:`rnnedge.training.kinds`.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx

from rnnedge.data.atomic import atomic_output
from rnnedge.errors import ConfigError
from rnnedge.runtime.metadata import ModelMetadata
from rnnedge.training.checkpoint import load_checkpoint
from rnnedge.training.kinds import build_from_checkpoint

from .files import check_output_file, output_errors
from .kinds import export_kind_for
from .metadata import io_specs, model_id_of, producer, tensor_spec, write_graph_metadata
from .quality import Measured, measure_quality
from .results import ExportResult, Outcome
from .validate import Reference, Tolerances, validate_export
from .variants import VARIANTS, make_variant

__all__ = [
    "Built",
    "ExportResult",
    "Outcome",
    "build_export",
    "export_checkpoint",
    "export_model",
    "variant_path",
    "write_validated",
]


@dataclass(frozen=True)
class Built:
    """A checkpoint turned into a graph, the metadata it will carry and the reference it must match."""

    graph: onnx.ModelProto
    metadata: ModelMetadata
    reference: Reference


def build_export(ckpt: Mapping[str, Any]) -> Built:
    """Rebuild the checkpoint's network and write its graph and metadata (nothing is written to disk)."""
    kind = export_kind_for(ckpt["kind"])
    model: Any = build_from_checkpoint(dict(ckpt))  # the kind decides its attributes (config, ...)
    graph = kind.graph(model)
    others = (kind.lengths_input,) if kind.lengths_input else ()
    main, states, outputs = io_specs(graph, kind.main_input, others)
    lengths: dict[str, Any] = {}
    if kind.lengths_input:
        spec = next(i for i in graph.graph.input if i.name == kind.lengths_input)
        lengths = {"lengths": tensor_spec(spec)}
    data = ckpt.get("data")  # where a user's data came from (kinds trained on their files)
    meta = ModelMetadata(
        model_id=model_id_of(graph),
        input=main,
        states=states,
        outputs=outputs,
        config={
            "model": asdict(model.config),
            "training": dict(ckpt.get("train_config") or {}),
            "checkpoint_kind": ckpt["kind"],
            **({"data": dict(data)} if isinstance(data, dict) else {}),
        },
        producer=producer(),
        **lengths,
        **kind.describe(ckpt, model),
    )
    return Built(graph, meta, kind.reference(model))


def write_validated(
    graph: onnx.ModelProto,
    meta: ModelMetadata,
    reference: Reference,
    output: Path,
    tolerances: Tolerances | None = None,
) -> ExportResult:
    """Attach ``meta``, write to a temporary file, validate, then rename to ``output``."""
    check_output_file(output)
    write_graph_metadata(graph, meta)
    with output_errors(output):
        with atomic_output(output) as tmp:
            tmp.write_bytes(graph.SerializeToString())
            report = validate_export(tmp, reference, tolerances=tolerances, label=output.name)
        size = output.stat().st_size
    return ExportResult(output, meta, report, size)


def export_checkpoint(
    checkpoint: str | os.PathLike[str], output: str | os.PathLike[str], *, tolerances: Tolerances | None = None
) -> ExportResult:
    """Export ``checkpoint`` to the float file ``output`` after validating it against PyTorch."""
    built = build_export(load_checkpoint(checkpoint))
    return write_validated(built.graph, built.metadata, built.reference, Path(output), tolerances)


def variant_path(output: Path, variant: str) -> Path:
    """Where a variant of the float file ``output`` goes: ``NAME.onnx`` -> ``NAME.int8.onnx``."""
    return output if variant == "float32" else output.with_suffix(f".{variant}.onnx")


def _error_text(e: BaseException) -> str:
    """The whole error, every line of it, as ``Type: message``."""
    return "".join(traceback.format_exception_only(type(e), e)).strip()


def export_model(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    variants: Iterable[str] = (),
    data: str | os.PathLike[str] | None = None,
    tolerances: Tolerances | None = None,
    keep: Callable[[str, Path], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """Export ``checkpoint`` to the float file ``output``, then each of ``variants`` beside it.

    Returns one :class:`Outcome` per file, float first. A float export that fails raises
    (there is nothing to derive variants from); a variant that fails is recorded as failed
    with its whole error and the others go on, one this kind of model does not have (fp16
    of a classifier) as skipped. Variants' quality is measured on ``data`` as the command
    line measures it, the float file's once for all of them. ``keep(variant, path)`` says
    an earlier file is still current (the batch export's re-runs): it is kept, not rewritten.
    ``progress(variant)`` is called before each file.
    """
    output = Path(output)
    wanted = list(dict.fromkeys(variants))
    if unknown := [v for v in wanted if v not in VARIANTS]:
        raise ConfigError(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    keep = keep or (lambda variant, path: False)
    if progress:
        progress("float32")
    if keep("float32", output):
        outcomes = [Outcome("float32", output, "unchanged")]
    else:
        outcomes = [Outcome("float32", output, "ok", export_checkpoint(checkpoint, output, tolerances=tolerances))]

    baseline: list[Measured] = []

    def quality(path: Path) -> Measured:
        return measure_quality(path, data)

    def float_quality() -> Measured:
        if not baseline:
            baseline.append(quality(output))
        return baseline[0]

    for name in wanted:
        path = variant_path(output, name)
        if progress:
            progress(name)
        if keep(name, path):
            outcomes.append(Outcome(name, path, "unchanged"))
            continue
        try:
            result = make_variant(VARIANTS[name], output, path, quality, baseline=float_quality)
            outcomes.append(Outcome(name, path, "ok", result))
        except ConfigError as e:  # a variant this kind of model does not have
            outcomes.append(Outcome(name, path, "skipped", message=str(e)))
        except Exception as e:  # a batch never stops at one file; the message keeps every line
            outcomes.append(Outcome(name, path, "failed", message=_error_text(e)))
    return outcomes
