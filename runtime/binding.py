"""I/O binding: a stream's state stays on the execution device between steps.

On the CUDA provider, handing numpy state to ``InferenceSession.run`` would copy every
state tensor to the GPU and back on every step. With I/O binding the new state is left
where the graph wrote it and bound as the next step's input, so a step moves only the
new input in and the requested outputs out. On the CPU the same code runs with
``device="cpu"`` (no copies to save there, so it is off by default, but it keeps the
path tested on machines without a GPU).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort

__all__ = ["DeviceValues", "bound_run", "download", "upload"]

DeviceValues = dict[str, ort.OrtValue]


def upload(arrays: Mapping[str, np.ndarray], device: str) -> DeviceValues:
    """Copy host arrays to ``device`` (``"cpu"`` or ``"cuda"``) as onnxruntime values."""
    return {name: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a), device, 0) for name, a in arrays.items()}


def download(values: DeviceValues) -> dict[str, np.ndarray]:
    """Copy device values back to fresh host arrays."""
    return {name: v.numpy() for name, v in values.items()}


def bound_run(
    session: ort.InferenceSession,
    feeds: Mapping[str, np.ndarray],
    state: Mapping[str, ort.OrtValue],
    host_outputs: Sequence[str],
    state_outputs: Mapping[str, str],
    device: str,
) -> tuple[list[np.ndarray], DeviceValues]:
    """Run with ``feeds`` from the host and ``state`` on the device.

    Returns the ``host_outputs`` as numpy arrays (in that order) and the new state (``{state input name:
    value}``, read from ``state_outputs`` = ``{state input name: graph output}``) left on
    the device. ``state`` is not modified.
    """
    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_cpu_input(name, array)
    for name, value in state.items():
        binding.bind_ortvalue_input(name, value)
    for name in host_outputs:
        binding.bind_output(name, "cpu")
    for output in state_outputs.values():
        binding.bind_output(output, device, 0)
    session.run_with_iobinding(binding)
    values = binding.get_outputs()
    n = len(host_outputs)
    return [v.numpy() for v in values[:n]], dict(zip(state_outputs, values[n:], strict=True))
