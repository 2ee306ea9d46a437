"""Recurrent state as an immutable value.

A :class:`State` maps the model's state input names to read-only numpy arrays and
remembers which model made it, so a state handed to the wrong model is caught instead
of silently producing wrong numbers. Being immutable, a state can be kept, shared and
restored without copying.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

__all__ = ["State"]


@dataclass(frozen=True, eq=False)
class State(Mapping[str, np.ndarray]):
    """One recurrent state: ``{state name: array}`` with the batch on each array's batch axis."""

    model_id: str
    arrays: Mapping[str, np.ndarray]
    batch_size: int
    # A token of the loaded model that made (and so already checked) this state, letting it skip the
    # re-check. Not an init field: a state built or ``replace``d by hand is always checked in full.
    checked_by: object = field(default=None, init=False, repr=False, compare=False)
    # What a stream's ``feed`` returned on reaching this state (read-only), so that a stream restored
    # to it answers ``last``/``top_k`` at once; pickled with the arrays. None for initial states and
    # states built by hand.
    prediction: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        model_id: str,
        arrays: Mapping[str, np.ndarray],
        batch_size: int,
        *,
        copy: bool = True,
        checked_by: object = None,
        prediction: np.ndarray | None = None,
    ) -> State:
        """Freeze ``arrays`` into a state; ``copy=False`` only for arrays nobody else holds."""
        frozen = {}
        for name, a in arrays.items():
            if copy or not a.flags.c_contiguous:
                a = np.array(a, copy=True, order="C")
            a.flags.writeable = False
            frozen[name] = a
        state = cls(model_id, MappingProxyType(frozen), batch_size)
        object.__setattr__(state, "checked_by", checked_by)
        if prediction is not None:
            prediction = np.array(prediction, copy=True)
            prediction.flags.writeable = False
            object.__setattr__(state, "prediction", prediction)
        return state

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Pickled as its arrays and prediction: the model token stays behind, so it is checked again."""
        return (_restore, (self.model_id, dict(self.arrays), self.batch_size, self.prediction))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.arrays.items())
        return f"State(batch_size={self.batch_size}, {shapes})"


def _restore(
    model_id: str, arrays: dict[str, np.ndarray], batch_size: int, prediction: np.ndarray | None = None
) -> State:
    return State.of(model_id, arrays, batch_size, prediction=prediction)
