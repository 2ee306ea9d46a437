"""The one place where export reads and writes the runtime's metadata in an ONNX graph.

The format itself (:class:`~rnnedge.runtime.metadata.ModelMetadata`) is the runtime's: it is
the contract with every runtime that reads the file. Export only fills it in: the parts
every kind shares (inputs, states, outputs and their specs read off the graph, the weights'
fingerprint, the producer) are built here; what differs by kind comes from the kind's
metadata builder (:mod:`rnnedge.export.kinds`).
"""

from __future__ import annotations

import hashlib
from importlib import metadata as importlib_metadata

import onnx
import torch

from rnnedge.errors import ExportValidationError
from rnnedge.runtime.metadata import METADATA_KEY, ModelMetadata, StateSpec, TensorSpec

from .graphs import OPSET

__all__ = ["io_specs", "model_id_of", "producer", "read_graph_metadata", "tensor_spec", "write_graph_metadata"]

_DTYPE_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT64: "int64",
}


def tensor_spec(info: onnx.ValueInfoProto) -> TensorSpec:
    """The metadata's view of a graph input or output, read off the graph itself."""
    dims = tuple(d.dim_param if d.dim_param else d.dim_value for d in info.type.tensor_type.shape.dim)
    return TensorSpec(info.name, _DTYPE_NAMES[info.type.tensor_type.elem_type], dims)


def io_specs(
    graph: onnx.ModelProto, main_input: str, other_inputs: tuple[str, ...] = ()
) -> tuple[TensorSpec, tuple[StateSpec, ...], tuple[TensorSpec, ...]]:
    """Split the graph's I/O into the main input, state pairs (``name`` -> ``name_out``) and plain outputs.

    ``other_inputs`` (e.g. ``lengths``) are inputs that are neither the main input nor state.
    """
    inputs = {i.name: tensor_spec(i) for i in graph.graph.input if i.name not in other_inputs}
    outputs = [tensor_spec(o) for o in graph.graph.output]
    states = tuple(StateSpec(spec, f"{name}_out") for name, spec in inputs.items() if name != main_input)
    state_outs = {s.output for s in states}
    return inputs[main_input], states, tuple(o for o in outputs if o.name not in state_outs)


def model_id_of(graph: onnx.ModelProto) -> str:
    """A fingerprint of the weights, so a state made by one model is refused by another."""
    digest = hashlib.sha256()
    for init in sorted(graph.graph.initializer, key=lambda t: t.name):
        digest.update(init.name.encode())
        digest.update(init.raw_data)
    return digest.hexdigest()[:16]


def producer() -> dict[str, str]:
    """Which software wrote the file: rnnedge, torch and onnx versions, and the opset."""

    def version(pkg: str) -> str:
        try:
            return importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            return "unknown"

    return {
        "name": "rnnedge",
        "version": version("rnnedge"),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": str(OPSET),
    }


def write_graph_metadata(graph: onnx.ModelProto, meta: ModelMetadata) -> None:
    """Replace whatever metadata ``graph`` carries with ``meta`` (the graph is changed in place)."""
    del graph.metadata_props[:]
    graph.metadata_props.add(key=METADATA_KEY, value=meta.to_json())


def read_graph_metadata(graph: onnx.ModelProto, label: str) -> ModelMetadata:
    """The metadata an exported graph carries; ``label`` names the file in the error if it has none."""
    props = {p.key: p.value for p in graph.metadata_props}
    if METADATA_KEY not in props:
        raise ExportValidationError(f"{label} carries no rnnedge metadata", [f"no metadata key {METADATA_KEY!r}"])
    return ModelMetadata.from_json(props[METADATA_KEY])
