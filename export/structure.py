"""What a recurrent network is made of, read off its submodules: the one description graph writers take.

rnnedge's own networks and a user's ``nn.Module`` are read the same way (:func:`read_structure`):
its submodules, in whatever order they were made, must be an optional ``nn.Embedding``, one
``nn.LSTM`` or ``nn.GRU`` (any ``num_layers``, ``bidirectional``, ``batch_first`` either way, with or
without biases), any ``nn.Dropout`` (an identity in eval) and one ``nn.Linear`` reading its outputs; the
embedding and the linear layer may share their weight (tied). Anything else is refused with
:class:`~rnnedge.errors.UnsupportedModuleError` naming the submodule, because a graph written
without it would compute something else. What a module does in its ``forward`` beyond these
layers cannot be read here: validation against that ``forward`` catches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from rnnedge.errors import UnsupportedModuleError

__all__ = ["SUPPORTED", "Recurrent", "read_structure"]

SUPPORTED = (
    "an optional nn.Embedding (token ids in), one nn.LSTM or nn.GRU (any num_layers, bidirectional, batch_first), "
    "any nn.Dropout and one nn.Linear reading its outputs"
)


@dataclass(frozen=True)
class Recurrent:
    """A network's parts: ``embedding`` (None: frames in), ``rnn`` (registered as ``rnn_name``), ``head``."""

    rnn: nn.LSTM | nn.GRU
    head: nn.Linear
    embedding: nn.Embedding | None = None
    rnn_name: str = "rnn"

    @property
    def cell(self) -> str:
        """``lstm`` or ``gru``: read off the recurrent layer itself."""
        return "gru" if isinstance(self.rnn, nn.GRU) else "lstm"

    @property
    def state_names(self) -> tuple[str, ...]:
        """The carried state's parts: ``h`` and ``c`` for an LSTM, ``h`` for a GRU."""
        return ("h",) if self.cell == "gru" else ("h", "c")

    @property
    def hidden_size(self) -> int:
        return int(self.rnn.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.rnn.num_layers)

    @property
    def bidirectional(self) -> bool:
        return bool(self.rnn.bidirectional)

    @property
    def input_size(self) -> int:
        """Features per frame fed to the network (for an embedding: the vocabulary's size is ``vocab_size``)."""
        return int(self.rnn.input_size)

    @property
    def tied(self) -> bool:
        """The head's weight is the embedding's (one matrix in the file)."""
        return self.embedding is not None and self.head.weight is self.embedding.weight


def _refuse(name: str, what: str) -> UnsupportedModuleError:
    return UnsupportedModuleError(f"submodule {name or '<root>'!r} is {what}; rnnedge exports {SUPPORTED}")


def read_structure(module: nn.Module) -> Recurrent:
    """The parts of ``module``, checked to be what the graph writers represent exactly (else refused).

    The order the parts were registered in does not matter (a module may make its output layer
    first); how ``forward`` wires them is proven by validation against it.
    """
    found: dict[type[nn.Module], tuple[str, Any]] = {}
    for name, sub in module.named_modules():
        if isinstance(sub, (nn.LSTMCell, nn.GRUCell, nn.RNNCell)):
            raise _refuse(
                name, f"an nn.{type(sub).__name__}, stepped by Python code export cannot read (use nn.LSTM/nn.GRU)"
            )
        if isinstance(sub, nn.RNN):
            raise _refuse(name, "an nn.RNN (only nn.LSTM and nn.GRU)")
        if isinstance(sub, nn.LSTM) and sub.proj_size:
            raise _refuse(name, f"an nn.LSTM with proj_size={sub.proj_size} (ONNX's LSTM has no projection)")
        if isinstance(sub, nn.Embedding) and sub.max_norm is not None:
            raise _refuse(name, "an nn.Embedding with max_norm (it renormalises its weights as it reads them)")
        roles: tuple[type[nn.Module], ...] = (nn.RNNBase, nn.Embedding, nn.Linear)  # nn.RNN was refused above
        role = next((r for r in roles if isinstance(sub, r)), None)
        if role is not None:
            if role in found:
                what = {nn.RNNBase: "recurrent layer", nn.Embedding: "nn.Embedding", nn.Linear: "nn.Linear"}[role]
                hint = " (stack layers with one module's num_layers)" if role is nn.RNNBase else ""
                raise _refuse(name, f"a second {what} besides {found[role][0]!r}{hint}")
            found[role] = (name, sub)
        elif not list(sub.children()) and not isinstance(sub, nn.Dropout):  # containers' leaves come next
            raise _refuse(name, f"a layer of type {type(sub).__name__}, which export does not know")
    if nn.RNNBase not in found:
        raise UnsupportedModuleError(f"the module holds no nn.LSTM or nn.GRU; rnnedge exports {SUPPORTED}")
    rnn_name, rnn = found[nn.RNNBase]
    if nn.Linear not in found:
        raise UnsupportedModuleError(
            f"the module holds no nn.Linear to read {rnn_name!r}'s outputs; rnnedge exports {SUPPORTED}"
        )
    head_name, head = found[nn.Linear]
    directions = 2 if rnn.bidirectional else 1
    if head.in_features != directions * rnn.hidden_size:
        raise _refuse(
            head_name,
            f"an nn.Linear of {head.in_features} inputs, but {rnn_name!r} gives {directions * rnn.hidden_size} "
            "per step",
        )
    embedding = found.get(nn.Embedding)
    if embedding is not None and embedding[1].embedding_dim != rnn.input_size:
        raise _refuse(
            embedding[0],
            f"an nn.Embedding of dimension {embedding[1].embedding_dim}, but {rnn_name!r} takes {rnn.input_size}",
        )
    return Recurrent(rnn, head, embedding[1] if embedding else None, rnn_name)
