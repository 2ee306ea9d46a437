"""ONNX graphs written node by node from a trained module's weights.

Why not ``torch.onnx.export``: the TorchScript exporter is deprecated, and the dynamo
exporter pins sequence lengths in declared output shapes, adds weight-reordering nodes
and can silently export a static graph. Writing the graph ourselves gives exactly one
native ``LSTM`` node per layer and direction, named dynamic axes on every declared
shape, weights stored once in ONNX gate order, and byte-identical files for the same
checkpoint. Parity with PyTorch is then proven by :mod:`rnnedge.export.validate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from .structure import Recurrent, Stage

__all__ = [
    "OPSET",
    "language_model_graph",
    "recurrent_weights",
    "sequence_classifier_graph",
    "tagger_graph",
]

OPSET = 17
_F32 = TensorProto.FLOAT
_I64 = TensorProto.INT64
# PyTorch stacks gates as (input, forget, cell, output); ONNX as (input, output, forget, cell).
_TORCH_TO_ONNX_GATES = (0, 3, 1, 2)
# PyTorch's GRU stacks (reset, update, new); ONNX's (update, reset, hidden).
_TORCH_TO_ONNX_GRU_GATES = (1, 0, 2)


def recurrent_weights(rnn: nn.LSTM | nn.GRU, layer: int, reverse: bool = False) -> tuple[np.ndarray, ...]:
    """W ``(1, G*H, in)``, R ``(1, G*H, H)``, B ``(1, 2*G*H)`` of one layer and direction, in ONNX gate order.

    G is 4 for an ``nn.LSTM``, 3 for an ``nn.GRU``. PyTorch's ``nn.GRU`` applies the reset gate after the
    recurrent product (``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``): ONNX's ``GRU`` with
    ``linear_before_reset=1``.
    """
    order = _TORCH_TO_ONNX_GRU_GATES if isinstance(rnn, nn.GRU) else _TORCH_TO_ONNX_GATES
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")

    def gates(name: str) -> np.ndarray:
        w = getattr(rnn, name + suffix).detach().cpu().numpy().astype(np.float32)
        return np.concatenate([np.split(w, len(order))[g] for g in order])

    w, r = gates("weight_ih"), gates("weight_hh")
    # nn.LSTM/nn.GRU(bias=False): ONNX's B of zeros computes the same
    b = np.concatenate([gates("bias_ih"), gates("bias_hh")]) if rnn.bias else np.zeros(2 * w.shape[0], np.float32)
    return w[None], r[None], b[None]


class _Graph:
    """A tiny builder: nodes, initializers and named values, nothing more."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        contiguous = value if value.flags.c_contiguous else np.ascontiguousarray(value)  # keeps 0-d scalars 0-d
        self.initializers.append(numpy_helper.from_array(contiguous, name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: list[str] | str, **attrs: Any) -> list[str]:
        outs = [outputs] if isinstance(outputs, str) else outputs
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{op_type}_{len(self.nodes)}", **attrs))
        return outs

    def recurrent(
        self,
        prefix: str,
        x: str,
        rnn: nn.LSTM | nn.GRU,
        layer: int,
        *,
        lengths: str = "",
        h0: str = "",
        c0: str = "",
        direction: str = "forward",
    ) -> str:
        """One native ``LSTM`` or ``GRU`` node over ``x`` ``(T, B, in)``, ``direction`` forward, reverse or both.

        ``lengths`` names an int32 ``(B,)`` of valid steps per sequence (``sequence_lens``): past it the
        outputs are zero and the final state is the last valid step's. Returns ``Y`` ``(T, D, B, H)``;
        the final states come out as ``{prefix}_h`` (and ``{prefix}_c``) ``(D, B, H)``. The GRU node
        (the language models' GRU reuses it) is written with ``linear_before_reset=1``, PyTorch's GRU.
        """
        directions = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}[direction]
        parts = [recurrent_weights(rnn, layer, reverse) for reverse in directions]
        w, r, b = (np.concatenate([p[i] for p in parts]) for i in range(3))
        names = [self.const(f"{prefix}.{k}", v) for k, v in (("W", w), ("R", r), ("B", b))]
        if isinstance(rnn, nn.GRU):
            self.op(
                "GRU",
                [x, *names, lengths, h0],
                [f"{prefix}_Y", f"{prefix}_h"],
                hidden_size=rnn.hidden_size,
                direction=direction,
                linear_before_reset=1,
            )
        else:
            self.op(
                "LSTM",
                [x, *names, lengths, h0, c0],
                [f"{prefix}_Y", f"{prefix}_h", f"{prefix}_c"],
                hidden_size=rnn.hidden_size,
                direction=direction,
            )
        return f"{prefix}_Y"

    def model(
        self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], doc: str
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnedge")
        model.ir_version = 8  # readable by onnxruntime >= 1.14
        return model


def _info(name: str, dtype: int, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def _state_infos(net: Recurrent) -> tuple[list[onnx.ValueInfoProto], list[onnx.ValueInfoProto]]:
    """Each stage's ``h`` (``c``) ``(layers, batch, H)`` in, and ``h_out`` (``c_out``) out."""
    ins, outs = [], []
    for stage in net.stages:
        shape: list[int | str] = [stage.num_layers, "batch", stage.hidden_size]
        ins += [_info(n, _F32, shape) for n in stage.state_names]
        outs += [_info(f"{n}_out", _F32, shape) for n in stage.state_names]
    return ins, outs


def _stage(g: _Graph, stage: Stage, x: str, axes1: str, lengths: str = "") -> str:
    """One recurrent submodule's forward layers over ``x`` ``(T, B, in)``, from its state inputs to their outputs.

    Its ``h`` (``c``) ``(layers, B, H)`` is split into one ``(1, B, H)`` slice per layer, and each
    layer's final state concatenated back. Returns its top layer's outputs ``(T, B, H)``.
    """
    names, layers = stage.state_names, stage.num_layers
    if layers == 1:
        slices = [[n] for n in names]
    else:
        split = g.const(f"{stage.prefix}layer_split", np.ones(layers, np.int64))
        slices = [g.op("Split", [n, split], [f"{n}_layer{i}" for i in range(layers)], axis=0) for n in names]
    for i in range(layers):
        h0, c0 = (slices[0][i], slices[1][i] if len(slices) > 1 else "")
        y = g.recurrent(stage.layer(i), x, stage.rnn, i, lengths=lengths, h0=h0, c0=c0)
        x = g.op("Squeeze", [y, axes1], f"{stage.layer(i)}_out")[0]  # (T, B, H)
    for n, part in zip(names, ("h", "c")[: len(names)], strict=True):
        g.op("Concat", [f"{stage.layer(i)}_{part}" for i in range(layers)], f"{n}_out", axis=0)
    return x


def _chain(g: _Graph, net: Recurrent, x: str, axes1: str, lengths: str = "") -> str:
    """Every stage over ``x`` ``(T, B, F)`` in turn, each carrying its own state: the last's outputs ``(T, B, H)``."""
    for stage in net.stages:
        x = _stage(g, stage, x, axes1, lengths)
    return x


def language_model_graph(net: Recurrent) -> onnx.ModelProto:
    """Language model: ``tokens`` int64 ``(batch, sequence)`` and ``h``/``c`` ``(layers, batch, H)`` (GRU: ``h``).

    Outputs ``logits`` ``(batch, sequence, vocab)``, ``next_probs`` ``(batch, vocab)`` (the softmax of
    the last position: what a stream returns) and the new ``h_out``/``c_out``. One native ``LSTM`` or
    ``GRU`` node per layer (a GRU with ``linear_before_reset=1``, PyTorch's GRU); the cell is the
    recurrent layer's own type. A tied embedding and output layer are stored once.
    """
    assert net.embedding is not None and not net.bidirectional  # the language-model kinds check both
    gru = net.cell == "gru"
    vocab, hid = net.embedding.num_embeddings, net.hidden_size
    g = _Graph()
    axes1 = g.const("axes1", np.array([1], np.int64))
    emb = g.const("embedding.weight", net.embedding.weight.detach().numpy().astype(np.float32))
    g.op("Gather", [emb, "tokens"], "emb")  # (B, T, E)
    g.op("Transpose", ["emb"], "x_tbh", perm=[1, 0, 2])  # (T, B, E)
    x = _chain(g, net, "x_tbh", axes1)  # (T, B, H)
    g.op("Transpose", [x], "out_bth", perm=[1, 0, 2])  # (B, T, H)
    head = net.head
    bias = head.bias.detach().numpy() if head.bias is not None else np.zeros(vocab)
    bias_name = g.const("decoder.bias", bias.astype(np.float32))
    if net.tied:  # one copy of the shared matrix: logits = out · embeddingᵀ, as a Gemm over (B·T, H)
        flat = g.op("Reshape", ["out_bth", g.const("rows_by_hidden", np.array([-1, hid], np.int64))], "out_flat")
        g.op("Gemm", [flat[0], emb, bias_name], "logits_flat", transB=1)
        g.op("Shape", ["tokens"], "batch_seq")
        g.op("Concat", ["batch_seq", g.const("vocab_dim", np.array([vocab], np.int64))], "logits_shape", axis=0)
        g.op("Reshape", ["logits_flat", "logits_shape"], "logits")
    else:
        w = head.weight.detach().numpy().astype(np.float32)
        g.op("MatMul", ["out_bth", g.const("decoder.weight_t", np.ascontiguousarray(w.T))], "proj")
        g.op("Add", ["proj", bias_name], "logits")
    # What a stream returns after each feed, computed in the graph rather than in Python afterwards.
    g.op("Gather", ["logits", g.const("last_position", np.array(-1, np.int64))], "last_logits", axis=1)  # (B, V)
    g.op("Softmax", ["last_logits"], "next_probs", axis=-1)
    state_in, state_out = _state_infos(net)
    return g.model(
        "rnnedge_gru_lm" if gru else "rnnedge_word_lm",
        [_info("tokens", _I64, ["batch", "sequence"]), *state_in],
        [_info("logits", _F32, ["batch", "sequence", vocab]), _info("next_probs", _F32, ["batch", vocab]), *state_out],
        "GRU language model; logits are unnormalised scores of the next token at every position."
        if gru
        else "Word-level LSTM language model; logits are unnormalised scores of the next word at every position.",
    )


def tagger_graph(net: Recurrent) -> onnx.ModelProto:
    """A per-frame tagger: ``x`` ``(batch, sequence, F)`` and ``lengths`` int64 ``(batch,)`` in.

    Outputs ``logits`` and ``probs`` ``(batch, sequence, classes)``: one label distribution per frame,
    from the frames up to it (causal: the state ``h`` (``c``) ``(layers, batch, H)`` carries the rest).
    Past ``lengths[b]`` the recurrent output is zero and the state is the last valid step's, so a padded
    batch gives each sequence what it alone gives on its own frames.
    """
    assert not net.bidirectional and net.embedding is None  # the tagger kind checks both
    g = _Graph()
    axes1 = g.const("axes1", np.array([1], np.int64))
    g.op("Cast", ["lengths"], "seq_lens", to=TensorProto.INT32)
    g.op("Transpose", ["x"], "x_tbf", perm=[1, 0, 2])  # (T, B, F)
    x = _chain(g, net, "x_tbf", axes1, "seq_lens")  # (T, B, H)
    g.op("Transpose", [x], "out_bth", perm=[1, 0, 2])  # (B, T, H)
    head, ncls = net.head, net.head.out_features
    w = head.weight.detach().numpy().astype(np.float32)
    g.op("MatMul", ["out_bth", g.const("head.weight_t", np.ascontiguousarray(w.T))], "proj")
    if head.bias is not None:
        g.op("Add", ["proj", g.const("head.bias", head.bias.detach().numpy().astype(np.float32))], "logits")
    else:
        g.op("Identity", ["proj"], "logits")
    g.op("Softmax", ["logits"], "probs", axis=-1)
    state_in, state_out = _state_infos(net)
    return g.model(
        "rnnedge_tagger",
        [_info("x", _F32, ["batch", "sequence", net.input_size]), _info("lengths", _I64, ["batch"]), *state_in],
        [_info(n, _F32, ["batch", "sequence", ncls]) for n in ("logits", "probs")] + state_out,
        f"{net.cell.upper()} per-frame tagger; logits/probs: one distribution per frame, from the frames up to it.",
    )


def _carried_layers(g: _Graph, net: Recurrent, head: str, axes0: str, axes1: str) -> tuple[list[Any], list[Any]]:
    """The forward layers over the chunk ``x``, carrying ``h`` (``c``) and, for the mean head, ``h_sum`` and ``steps``.

    Writes every stage's ``h_out`` (``c_out``), the top layer's outputs ``(T, B, H)`` (zero past
    each length) and, for the mean head, ``h_sum_out`` and ``steps_out``; returns the state's input
    and output infos.
    """
    g.op("Cast", ["lengths"], "seq_lens", to=TensorProto.INT32)
    g.op("Transpose", ["x"], "x_tbf", perm=[1, 0, 2])  # (T, B, F)
    top = _chain(g, net, "x_tbf", axes1, "seq_lens")  # (T, B, H)
    state_in, state_out = _state_infos(net)
    if head == "mean":
        hid = net.hidden_size
        g.op("ReduceSum", [top, axes0], "chunk_sum", keepdims=0)  # (B, H); zero past each length
        g.op("Add", ["h_sum", "chunk_sum"], "h_sum_out")
        g.op("Cast", ["lengths"], "lengths_f", to=_F32)
        g.op("Unsqueeze", ["lengths_f", axes1], "chunk_steps")  # (B, 1)
        g.op("Add", ["steps", "chunk_steps"], "steps_out")
        state_in += [_info("h_sum", _F32, ["batch", hid]), _info("steps", _F32, ["batch", 1])]
        state_out += [_info("h_sum_out", _F32, ["batch", hid]), _info("steps_out", _F32, ["batch", 1])]
    return state_in, state_out


def _conv_branch(g: _Graph, blocks: Sequence[tuple[nn.Conv1d, nn.BatchNorm1d]], rows: str, lengths: str) -> str:
    """Convolution blocks over ``rows`` ``(B, T, F)``, zero past ``lengths`` ``(B,)``: their mean ``(B, C)``.

    Each block is one ``Conv`` with its batch norm folded in (eval: an affine map per channel, its running
    statistics counting valid steps only), then ``Relu`` and the mask; each pads as PyTorch's
    ``padding="same"`` would (the odd zero on the right).
    """
    g.op("Shape", [rows], "conv_rows_shape")
    g.op("Gather", ["conv_rows_shape", g.const("conv_time_axis", np.array(1, np.int64))], "conv_steps")
    zero, one = g.const("conv_zero", np.array(0, np.int64)), g.const("conv_one", np.array(1, np.int64))
    g.op("Range", [zero, "conv_steps", one], "conv_positions")  # (T,)
    g.op("Unsqueeze", ["conv_positions", g.const("conv_axes0", np.array([0], np.int64))], "conv_positions_1t")
    g.op("Unsqueeze", [lengths, g.const("conv_axes1", np.array([1], np.int64))], "conv_lengths_b1")
    g.op("Less", ["conv_positions_1t", "conv_lengths_b1"], "conv_valid")  # (B, T)
    g.op("Unsqueeze", ["conv_valid", "conv_axes1"], "conv_mask")  # (B, 1, T)
    zero_f = g.const("conv_zero_f", np.array(0, np.float32))
    g.op("Transpose", [rows], "conv_bft", perm=[0, 2, 1])
    h = g.op("Where", ["conv_mask", "conv_bft", zero_f], "conv_in")[0]  # padding is zero, whatever it held
    for i, (conv, norm) in enumerate(blocks):
        assert norm.running_mean is not None and norm.running_var is not None  # track_running_stats, as made
        as64 = {k: v.detach().double().numpy() for k, v in norm.state_dict().items() if v.is_floating_point()}
        scale = as64["weight"] / np.sqrt(as64["running_var"] + norm.eps)
        w = conv.weight.detach().double().numpy() * scale[:, None, None]
        bias = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(len(scale))
        b = (bias - as64["running_mean"]) * scale + as64["bias"]
        total = conv.kernel_size[0] - 1
        g.op(
            "Conv",
            [h, g.const(f"conv{i}.weight", w.astype(np.float32)), g.const(f"conv{i}.bias", b.astype(np.float32))],
            f"conv{i}_out",
            pads=[total // 2, total - total // 2],
        )
        g.op("Relu", [f"conv{i}_out"], f"conv{i}_relu")
        h = g.op("Where", ["conv_mask", f"conv{i}_relu", zero_f], f"conv{i}_masked")[0]
    g.op("ReduceSum", [h, g.const("conv_axes2", np.array([2], np.int64))], "conv_sum", keepdims=0)  # (B, C)
    g.op("Cast", [lengths], "conv_count", to=_F32)
    g.op("Unsqueeze", ["conv_count", "conv_axes1"], "conv_count_b1")
    return g.op("Div", ["conv_sum", "conv_count_b1"], "conv_features")[0]


def sequence_classifier_graph(
    net: Recurrent, head: str, conv: Sequence[tuple[nn.Conv1d, nn.BatchNorm1d]] = ()
) -> onnx.ModelProto:
    """A classifier of variable-length sequences: ``x`` ``(batch, sequence, F)`` and ``lengths`` int64 ``(batch,)``.

    ``lengths[b]`` says how many of the chunk's steps belong to sequence ``b`` (the rest is padding,
    passed to the nodes as ``sequence_lens`` so that it changes nothing). Outputs ``logits`` and
    ``probs`` ``(batch, classes)`` describe each sequence's whole prefix so far.

    Causal state: each recurrent submodule's ``h`` (and ``c`` for an LSTM) ``(layers, batch, H)``
    (the second's ``h2``, ``c2``...); the ``mean`` head adds ``h_sum`` ``(batch, H)`` (the top layer's
    outputs summed over valid steps) and ``steps`` ``(batch, 1)``; the ``last`` head reads the top
    layer's final ``h``. A bidirectional model keeps the rows received so far, ``prefix`` ``(batch,
    received, F)``, and re-reads it backward with each chunk; with one layer in all its forward
    direction carries the causal state beside it (a chunk costs O(chunk) forward, O(prefix)
    backward), with more the layers above need both directions of the whole prefix, so every layer
    re-reads it, each in its own direction(s). ``head`` is ``mean`` (the top
    layer's outputs averaged over the steps) or ``last`` (its final state: a bidirectional model's
    forward last step and backward first, as ``torch.cat([h_n[-2], h_n[-1]], 1)``). ``conv``: the
    blocks of a convolutional branch (:func:`_conv_branch`) whose mean over the whole prefix the head
    reads after the recurrent features; it makes the model re-read its prefix like a stacked
    bidirectional one.
    """
    feat, ncls, layers = net.input_size, net.head.out_features, net.num_layers
    rereads_prefix = bool(conv) or net.bidirectional
    g = _Graph()
    every_layer_rereads = bool(conv) or (net.bidirectional and layers > 1)
    # (an initializer no node reads makes onnxruntime log a warning)
    axes0 = "" if every_layer_rereads and head == "last" else g.const("axes0", np.array([0], np.int64))
    axes1 = g.const("axes1", np.array([1], np.int64))
    state_in: list[Any] = []
    state_out: list[Any] = []
    if rereads_prefix:  # the received prefix, and its length per sequence
        g.op("Concat", ["prefix", "x"], "prefix_out", axis=1)  # (B, P+T, F)
        g.op("Shape", ["prefix"], "prefix_shape")
        g.op("Gather", ["prefix_shape", axes1], "received")  # (1,)
        g.op("Add", ["lengths", "received"], "total_lengths")  # (B,): the prefix is never padded
        g.op("Cast", ["total_lengths"], "total_lens", to=TensorProto.INT32)
        g.op("Transpose", ["prefix_out"], "prefix_tbf", perm=[1, 0, 2])  # (T, B, F)
    if every_layer_rereads:
        x = "prefix_tbf"
        for stage in net.stages:  # each layer over the whole prefix, in its own direction(s)
            both = stage.bidirectional
            for i in range(stage.num_layers):
                name, width = stage.layer(i), stage.output_size
                direction = "bidirectional" if both else "forward"
                y = g.recurrent(name, x, stage.rnn, i, lengths="total_lens", direction=direction)
                g.op("Transpose", [y], f"{name}_tbdh", perm=[0, 2, 1, 3])  # (T, B, D, H)
                flat = g.const(f"{name}_flat", np.array([0, 0, width], np.int64))
                x = g.op("Reshape", [f"{name}_tbdh", flat], f"{name}_out")[0]  # (T, B, D*H): forward, then backward
        if head == "mean":
            g.op("ReduceSum", [x, axes0], "out_sum", keepdims=0)  # (B, D*H); zero past each length
            g.op("Cast", ["total_lengths"], "total_f", to=_F32)
            g.op("Unsqueeze", ["total_f", axes1], "count")  # (B, 1)
            g.op("Div", ["out_sum", "count"], "features")
        else:
            last = net.stages[-1]
            top = f"{last.layer(last.num_layers - 1)}_h"  # (D, B, H): forward's last valid step, backward's first
            g.op("Transpose", [top], "final_bdh", perm=[1, 0, 2])
            flat = g.const("final_flat", np.array([0, last.output_size], np.int64))
            g.op("Reshape", ["final_bdh", flat], "features")
    else:
        state_in, state_out = _carried_layers(g, net, head, axes0, axes1)
        forward = "forward_features" if net.bidirectional else "features"
        if head == "mean":
            g.op("Div", ["h_sum_out", "steps_out"], forward)  # (B, H)
        else:
            last = net.stages[-1]
            g.op("Squeeze", [f"{last.layer(last.num_layers - 1)}_h", axes0], forward)  # (B, H): the last valid step's
        if net.bidirectional:  # one layer: the backward direction over the whole prefix
            y = g.recurrent("backward", "prefix_tbf", net.rnn, 0, lengths="total_lens", direction="reverse")
            if head == "mean":
                g.op("Squeeze", [y, axes1], "backward_out")  # (T, B, H), zero past each length
                g.op("ReduceSum", ["backward_out", axes0], "backward_sum", keepdims=0)
                g.op("Div", ["backward_sum", "steps_out"], "backward_features")
            else:
                g.op("Squeeze", ["backward_h", axes0], "backward_features")  # its output at the first step
            g.op("Concat", ["forward_features", "backward_features"], "features", axis=1)  # as PyTorch orders them
    if rereads_prefix:
        state_in.append(_info("prefix", _F32, ["batch", "received", feat]))
        state_out.append(_info("prefix_out", _F32, ["batch", "received_out", feat]))
    features = "features"
    if conv:
        branch = _conv_branch(g, conv, "prefix_out", "total_lengths")
        features = g.op("Concat", ["features", branch], "all_features", axis=1)[0]  # as PyTorch orders them
    w = net.head.weight.detach().numpy().astype(np.float32)
    b = (net.head.bias.detach().numpy() if net.head.bias is not None else np.zeros(ncls)).astype(np.float32)
    g.op("Gemm", [features, g.const("head.weight", w), g.const("head.bias", b)], "logits", transB=1)
    g.op("Softmax", ["logits"], "probs", axis=-1)
    return g.model(
        "rnnedge_sequence_classifier",
        [_info("x", _F32, ["batch", "sequence", feat]), _info("lengths", _I64, ["batch"]), *state_in],
        [_info("logits", _F32, ["batch", ncls]), _info("probs", _F32, ["batch", ncls]), *state_out],
        f"{net.cell.upper()} sequence classifier ({head} head); logits/probs describe each sequence's prefix.",
    )
