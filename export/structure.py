"""What a recurrent network is made of, read off its submodules: the one description graph writers take.

A user's ``nn.Module`` and rnnedge's own language models are read so (:func:`read_structure`):
its submodules, in the order they were made, must be an optional ``nn.Embedding``, one or more
``nn.LSTM``/``nn.GRU`` applied one after the other (each any ``num_layers``, ``bidirectional``,
``batch_first`` either way, with or without biases; each one's input the previous one's output), any
``nn.Dropout`` (an identity in eval) and one ``nn.Linear`` reading the last one's outputs; the
embedding and the linear layer may share their weight (tied). Anything else is refused with
:class:`~rnnedge.errors.UnsupportedModuleError` naming the submodule, because a graph written
without it would compute something else. What a module does in its ``forward`` beyond these
layers cannot be read here: validation against that ``forward`` catches it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from torch import nn

from rnnedge.errors import UnsupportedModuleError

__all__ = ["SUPPORTED", "Recurrent", "Stage", "read_structure"]

SUPPORTED = (
    "an optional nn.Embedding (token ids in), one or more nn.LSTM/nn.GRU applied in turn (any num_layers, "
    "bidirectional, batch_first), any nn.Dropout and one nn.Linear reading the last one's outputs"
)


@dataclass(frozen=True)
class Stage:
    """One recurrent submodule of the chain (``name`` in the module), its state parts and node names.

    The first stage's state is ``h`` (``c``) and its nodes ``layer{i}``, as a single-RNN file's;
    stage ``k >= 1``'s state is ``h{k+1}`` (``c{k+1}``) and its nodes ``stage{k+1}_layer{i}``.
    """

    rnn: nn.LSTM | nn.GRU
    name: str
    index: int = 0

    @property
    def cell(self) -> str:
        """``lstm`` or ``gru``: read off the recurrent layer itself."""
        return "gru" if isinstance(self.rnn, nn.GRU) else "lstm"

    @property
    def state_names(self) -> tuple[str, ...]:
        """The carried state's parts: ``h`` and ``c`` for an LSTM, ``h`` for a GRU (numbered after the first)."""
        suffix = str(self.index + 1) if self.index else ""
        return tuple(part + suffix for part in (("h",) if self.cell == "gru" else ("h", "c")))

    @property
    def prefix(self) -> str:
        """What this stage's node and weight names start with: nothing for the first."""
        return f"stage{self.index + 1}_" if self.index else ""

    def layer(self, i: int) -> str:
        """The name of layer ``i``'s node, its weights and its outputs."""
        return f"{self.prefix}layer{i}"

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
        return int(self.rnn.input_size)

    @property
    def output_size(self) -> int:
        """Features per step out of the top layer (both directions)."""
        return (2 if self.bidirectional else 1) * self.hidden_size

    def describe(self) -> dict[str, Any]:
        """The stage as the metadata's ``config.model`` records it."""
        return {
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "input_size": self.input_size,
        }


@dataclass(frozen=True)
class Recurrent:
    """A network's parts: ``embedding`` (None: frames in), the recurrent ``stages`` in order, ``head``."""

    stages: tuple[Stage, ...]
    head: nn.Linear
    embedding: nn.Embedding | None = None

    @property
    def rnn(self) -> nn.LSTM | nn.GRU:
        """The first recurrent submodule (rnnedge's own networks have only it)."""
        return self.stages[0].rnn

    @property
    def rnn_name(self) -> str:
        return self.stages[0].name

    @property
    def cell(self) -> str:
        """The first stage's cell (rnnedge's own networks have one stage)."""
        return self.stages[0].cell

    @property
    def state_names(self) -> tuple[str, ...]:
        """Every stage's state parts, in order."""
        return tuple(n for s in self.stages for n in s.state_names)

    @property
    def hidden_size(self) -> int:
        """The last stage's hidden size (one direction), what the head reads per direction."""
        return self.stages[-1].hidden_size

    @property
    def num_layers(self) -> int:
        """Recurrent layers over all stages."""
        return sum(s.num_layers for s in self.stages)

    @property
    def bidirectional(self) -> bool:
        """Any stage reads backward: the network is not causal."""
        return any(s.bidirectional for s in self.stages)

    @property
    def input_size(self) -> int:
        """Features per frame fed to the network (for an embedding: the vocabulary's size is ``vocab_size``)."""
        return self.stages[0].input_size

    @property
    def tied(self) -> bool:
        """The head's weight is the embedding's (one matrix in the file)."""
        return self.embedding is not None and self.head.weight is self.embedding.weight


def _refuse(name: str, what: str) -> UnsupportedModuleError:
    return UnsupportedModuleError(f"submodule {name or '<root>'!r} is {what}; rnnedge exports {SUPPORTED}")


def read_structure(module: nn.Module) -> Recurrent:
    """The parts of ``module``, checked to be what the graph writers represent exactly (else refused).

    The embedding and the head may be registered anywhere (a module may make its output layer
    first); the recurrent submodules run in the order they were registered, each reading the
    previous one's outputs. How ``forward`` wires them is proven by validation against it.
    """
    found: dict[type[nn.Module], tuple[str, Any]] = {}
    rnns: list[tuple[str, nn.LSTM | nn.GRU]] = []
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
        if isinstance(sub, (nn.LSTM, nn.GRU)):
            rnns.append((name, sub))
            continue
        role = next((r for r in (nn.Embedding, nn.Linear) if isinstance(sub, r)), None)
        if role is not None:
            if role in found:
                raise _refuse(name, f"a second nn.{role.__name__} besides {found[role][0]!r}")
            found[role] = (name, sub)
        elif not list(sub.children()) and not isinstance(sub, nn.Dropout):  # containers' leaves come next
            raise _refuse(name, f"a layer of type {type(sub).__name__}, which export does not know")
    if not rnns:
        raise UnsupportedModuleError(f"the module holds no nn.LSTM or nn.GRU; rnnedge exports {SUPPORTED}")
    stages = tuple(Stage(rnn, name, k) for k, (name, rnn) in enumerate(rnns))
    for before, after in itertools.pairwise(stages):
        if after.input_size != before.output_size:
            raise _refuse(
                after.name,
                f"a recurrent layer taking {after.input_size} features per step, but {before.name!r} before it gives "
                f"{before.output_size} (recurrent submodules run in the order they were made, each on the previous "
                "one's outputs)",
            )
    last = stages[-1]
    if nn.Linear not in found:
        raise UnsupportedModuleError(
            f"the module holds no nn.Linear to read {last.name!r}'s outputs; rnnedge exports {SUPPORTED}"
        )
    head_name, head = found[nn.Linear]
    if head.in_features != last.output_size:
        raise _refuse(
            head_name, f"an nn.Linear of {head.in_features} inputs, but {last.name!r} gives {last.output_size} per step"
        )
    embedding = found.get(nn.Embedding)
    if embedding is not None and embedding[1].embedding_dim != stages[0].input_size:
        raise _refuse(
            embedding[0],
            f"an nn.Embedding of dimension {embedding[1].embedding_dim}, but {stages[0].name!r} takes "
            f"{stages[0].input_size}",
        )
    return Recurrent(stages, head, embedding[1] if embedding else None)
