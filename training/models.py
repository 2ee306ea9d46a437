"""The networks, each shaped by a frozen config dataclass that travels into the checkpoint and the ONNX file.

Recurrent state is an explicit value: every ``forward`` takes the state and returns the
new one, so the same module serves training (state ``None``) and streaming validation.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional

from .config import LanguageModelConfig, SequenceClassifierConfig
from .kinds import ModelKind, register

__all__ = [
    "LANGUAGE_MODEL",
    "SEQUENCE_CLASSIFIER",
    "ClassifierState",
    "ConvBranch",
    "LanguageModelConfig",
    "RecurrentLanguageModel",
    "SequenceClassifier",
    "SequenceClassifierConfig",
]

ClassifierState = tuple[Tensor, ...]  # parts named by SequenceClassifier.state_names


class ConvBranch(nn.Module):
    """Three blocks of ``Conv1d`` (kernels 8, 5, 3; "same" length), batch norm and ReLU, averaged over the valid steps.

    Widths ``C, 2C, C`` (Wang et al. 2017's FCN has C = 128). Each block's output is
    zero past each sequence's length, so the next block reads zeros there, exactly as it would at the
    end of that sequence alone; and each batch norm sees the valid steps only, so that in training its
    statistics (and the running ones export folds in) do not count padding: padding changes nothing.
    Each convolution is padded as ``padding="same"`` would (the odd zero on the right), explicitly: torch
    warns at every call of an even kernel's "same".
    """

    KERNELS = (8, 5, 3)

    def __init__(self, input_size: int, channels: int) -> None:
        super().__init__()
        widths = (input_size, channels, 2 * channels, channels)
        self.convs = nn.ModuleList(nn.Conv1d(widths[i], widths[i + 1], k) for i, k in enumerate(self.KERNELS))
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in widths[1:])

    def blocks(self) -> list[tuple[nn.Conv1d, nn.BatchNorm1d]]:
        """Each block's convolution and batch norm, in order (what an exporter writes)."""
        return [(cast(nn.Conv1d, c), cast(nn.BatchNorm1d, n)) for c, n in zip(self.convs, self.norms, strict=True)]

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Features ``(B, C)`` of normalised ``x`` ``(B, T, F)`` whose sequence ``b`` has ``lengths[b]`` valid steps."""
        valid = torch.arange(x.shape[1], device=x.device)[None] < lengths.to(x.device)[:, None]  # (B, T)
        h = torch.where(valid[..., None], x, 0.0).transpose(1, 2)  # (B, F, T), zero past each length
        for (conv, norm), k in zip(self.blocks(), self.KERNELS, strict=True):
            steps = conv(functional.pad(h, ((k - 1) // 2, k // 2))).transpose(1, 2)  # (B, T, C)
            normed = torch.zeros_like(steps)
            normed[valid] = norm(steps[valid])  # (valid steps, C): the statistics of these alone
            h = torch.relu(normed).transpose(1, 2)
        return h.sum(dim=2) / lengths.to(h)[:, None]


class SequenceClassifier(nn.Module):
    """LSTM or GRU layers (and a :class:`ConvBranch`) over variable-length sequences -> linear; returns logits.

    ``forward(x, lengths)`` packs the sequences, so padding changes nothing: not the recurrence,
    not the mean, not the last step. The streaming state (:meth:`init_state`) of a causal model is
    ``h`` (and ``c`` for an LSTM) ``(num_layers, B, H)``, plus for the ``mean`` head the running
    sum of the top layer's outputs ``h_sum`` ``(B, H)`` and the steps so far ``steps`` ``(B, 1)``.
    A model that is not causal keeps the rows received so far, ``prefix`` ``(B, P, F)``: a bidirectional
    one of one layer beside its forward direction's causal state, re-reading the prefix backward each
    time; any other (more layers, or a convolutional branch) as its whole state, every part re-reading it.
    """

    def __init__(self, config: SequenceClassifierConfig) -> None:
        super().__init__()
        self.config = config
        rnn = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.rnn = rnn(
            config.input_size,
            config.hidden_size,
            config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
        )
        self.drop = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self.conv = ConvBranch(config.input_size, config.conv_channels) if config.conv_channels else None
        self.head = nn.Linear(directions * config.hidden_size + config.conv_channels, config.num_classes)

    @property
    def state_names(self) -> tuple[str, ...]:
        """The streaming state's parts, in the order :meth:`init_state` returns them (the graph's)."""
        cfg = self.config
        if (cfg.bidirectional and cfg.num_layers > 1) or self.conv is not None:
            return ("prefix",)
        names = ("h", "c") if cfg.cell == "lstm" else ("h",)
        carried = (*names, "h_sum", "steps") if cfg.head == "mean" else names
        return (*carried, "prefix") if cfg.bidirectional else carried

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits ``(B, C)`` for normalised ``x`` ``(B, T, F)`` whose sequence ``b`` has ``lengths[b]`` valid steps."""
        b, t, _ = x.shape
        if lengths is None or bool((lengths == t).all()):  # nothing to pack: the same values, faster
            out, final = self.rnn(x)
            lengths = torch.full((b,), t, dtype=torch.int64)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out_packed, final = self.rnn(packed)
            if self.config.head == "mean":
                out, _ = nn.utils.rnn.pad_packed_sequence(out_packed, batch_first=True, total_length=t)  # 0 past
        h_n = final[0] if isinstance(final, tuple) else final  # (L*D, B, H), at each sequence's last valid step
        if self.config.head == "mean":
            features = out.sum(dim=1) / lengths.to(out.dtype)[:, None]  # (B, D*H)
        elif self.config.bidirectional:
            features = torch.cat([h_n[-2], h_n[-1]], dim=1)  # top layer: forward's last step, backward's first
        else:
            features = h_n[-1]  # (B, H)
        if self.conv is not None:
            features = torch.cat([features, self.conv(x, lengths)], dim=1)  # (B, D*H + C)
        logits: Tensor = self.head(self.drop(features))
        return logits

    def init_state(self, batch: int) -> ClassifierState:
        """Zero streaming state for ``batch`` sequences, parts named by :attr:`state_names`."""
        cfg = self.config
        layers = torch.zeros(cfg.num_layers, batch, cfg.hidden_size)
        parts = {
            "prefix": torch.zeros(batch, 0, cfg.input_size),
            "h": layers,
            "c": layers.clone(),
            "h_sum": torch.zeros(batch, cfg.hidden_size),
            "steps": torch.zeros(batch, 1),
        }
        return tuple(parts[n] for n in self.state_names)

    def forward_stream(self, x: Tensor, state: ClassifierState) -> tuple[Tensor, ClassifierState]:
        """Logits after the prefix seen so far plus the whole chunk ``x`` ``(B, T, F)``, and the state to carry on.

        A model that is not causal simply re-runs the received prefix: it defines what a stream returns (and,
        bidirectional with one layer, the forward direction's state that the graph carries).
        """
        cfg = self.config
        parts = dict(zip(self.state_names, state, strict=True))
        if not cfg.causal:
            rows = torch.cat([parts["prefix"], x], dim=1)  # (B, P+T, F)
            received = {"prefix": rows}
            if "h" in self.state_names:  # one bidirectional layer: its forward state, as if it had been carried
                out, final = self.rnn(rows)  # out: (B, P+T, 2H); final: (2, B, H) each, forward first
                if isinstance(final, tuple):
                    received["h"], received["c"] = final[0][:1], final[1][:1]
                else:
                    received["h"] = final[:1]
                if cfg.head == "mean":
                    received["h_sum"] = out[..., : cfg.hidden_size].sum(dim=1)
                    received["steps"] = parts["steps"] + x.shape[1]
            return self.forward(rows), tuple(received[n] for n in self.state_names)
        carried = (parts["h"], parts["c"]) if cfg.cell == "lstm" else parts["h"]
        out, final = self.rnn(x, carried)  # out: (B, T, H)
        new: dict[str, Tensor] = {"h": final[0], "c": final[1]} if isinstance(final, tuple) else {"h": final}
        if cfg.head == "mean":
            new["h_sum"] = parts["h_sum"] + out.sum(dim=1)
            new["steps"] = parts["steps"] + x.shape[1]
            features = new["h_sum"] / new["steps"]
        else:
            features = out[:, -1]
        return self.head(features), tuple(new[n] for n in self.state_names)


class _TokenModel(nn.Module):
    """Embedding -> dropout -> multi-layer recurrent cell (dropout between layers) -> dropout -> linear.

    The language models' one shape; the cell is registered under ``cell_name`` (``lstm``, ``gru``), which
    names its weights in checkpoints. Parameters are made, and initialised uniformly, in this order.
    """

    def __init__(self, config: LanguageModelConfig, cell_name: str, cell: type[nn.LSTM] | type[nn.GRU]) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.drop = nn.Dropout(config.dropout)
        self.add_module(
            cell_name,
            cell(config.hidden_size, config.hidden_size, config.num_layers, batch_first=True, dropout=config.dropout),
        )
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        if config.tie_weights:
            self.decoder.weight = self.embedding.weight
        for p in self.parameters():
            nn.init.uniform_(p, -config.init_scale, config.init_scale)


SEQUENCE_CLASSIFIER = register(ModelKind("sequence_classifier", SequenceClassifierConfig, SequenceClassifier))


class RecurrentLanguageModel(_TokenModel):
    """A language model of words or characters (the tokens are the corpus's): LSTM layers, state ``(h, c)``
    (Zaremba et al. 2014), or GRU layers (``config.cell``), state ``(h,)``."""

    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__(config, config.cell, nn.GRU if config.cell == "gru" else nn.LSTM)
        self.state_names: tuple[str, ...] = ("h",) if config.cell == "gru" else ("h", "c")

    def init_state(self, batch: int) -> tuple[Tensor, ...]:
        """Zero state, each part ``(num_layers, batch, hidden)``."""
        shape = (self.config.num_layers, batch, self.config.hidden_size)
        return tuple(torch.zeros(shape) for _ in self.state_names)

    def forward(self, tokens: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Logits ``(B, T, V)`` for int64 ``tokens`` ``(B, T)``, and the new state."""
        emb = self.drop(self.embedding(tokens))  # (B, T, H)
        rnn = getattr(self, self.config.cell)
        if self.config.cell == "gru":
            out, h = rnn(emb, state[0])  # (B, T, H)
            return self.decoder(self.drop(out)), (h,)
        out, (h, c) = rnn(emb, (state[0], state[1]))
        return self.decoder(self.drop(out)), (h, c)  # (B, T, V)


LANGUAGE_MODEL = register(ModelKind("language_model", LanguageModelConfig, RecurrentLanguageModel))
