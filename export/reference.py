"""PyTorch's side of validation, built from a module: run in float32, and in float64 as the exact result.

A kind (or a user's module) gives one function, ``forward(module, x, state) -> (outputs,
new_state)`` over tensors; :func:`torch_reference` runs it on the module as it is (float32) and
on a float64 copy of it, and wraps both in numpy terms for :mod:`.validate`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from .validate import Arrays, Reference, Run, Scale

__all__ = ["TorchForward", "torch_reference"]

# (module, graph input as a tensor, state by name) -> (outputs by name, new state by name)
TorchForward = Callable[[nn.Module, Tensor, dict[str, Tensor]], tuple[dict[str, Tensor], dict[str, Tensor]]]


def _runner(module: nn.Module, forward: TorchForward, dtype: torch.dtype) -> Run:
    @torch.no_grad()
    def run(x: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[Arrays, Arrays]:
        tensor = torch.from_numpy(np.ascontiguousarray(x))
        if tensor.is_floating_point():
            tensor = tensor.to(dtype)
        parts = {n: torch.from_numpy(np.array(v)).to(dtype) for n, v in state.items()}
        outputs, new = forward(module, tensor, parts)
        return {k: v.numpy() for k, v in outputs.items()}, {k: v.numpy() for k, v in new.items()}

    return run


def torch_reference(
    module: nn.Module,
    forward: TorchForward,
    make_input: Callable[[int, int, np.random.Generator], np.ndarray],
    *,
    sequence_outputs: Iterable[str] = (),
    scales: Mapping[str, Scale] | None = None,
) -> Reference:
    """The :class:`Reference` of ``forward`` over ``module`` (float32) and a float64 copy of it (the exact result).

    The copy is deep (tied weights stay tied) and in eval mode; ``module`` itself is not changed.
    """
    exact = copy.deepcopy(module).double().eval()
    return Reference(
        run=_runner(module, forward, torch.float32),
        exact=_runner(exact, forward, torch.float64),
        make_input=make_input,
        sequence_outputs=frozenset(sequence_outputs),
        scales=dict(scales or {}),
    )
