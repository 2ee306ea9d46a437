"""Export judged against the exact result (PyTorch in float64): no valid model is refused, no broken graph passes.

(a) A matrix of kinds (LSTM/GRU classifiers: last and mean heads, bidirectional, two layers; LSTM
and GRU language models, tied or not) x training stages (untrained, 1, 50, 200 steps, trained to a
plateau on real data: JapaneseVowels, PTB's characters) x seeds, each validated on whole
sequences, a chunked stream and a padded batch up to 150 steps (4x JapaneseVowels' longest
sequence of 29, 3x the language models' 36-character windows). Every model is accepted.
(b) The graphs a hand-written exporter gets wrong (gate order, a bias dropped, a GRU's reset
applied before the product, a backward direction run forward, a state output not wired back),
each refused with a typed mismatch. The seeds beyond the first are ``slow`` (still part of CI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the train extra")
onnx = pytest.importorskip("onnx", reason="export needs the train extra")

from onnx import numpy_helper  # noqa: E402
from sequence_models import vowels  # noqa: E402

from rnnedge.export.exporter import Built, build_export  # noqa: E402
from rnnedge.export.metadata import write_graph_metadata  # noqa: E402
from rnnedge.export.validate import FACTOR, MismatchKind, ParityError, ParityReport, validate_export  # noqa: E402
from rnnedge.training.config import LanguageModelConfig, SequenceClassifierConfig  # noqa: E402
from rnnedge.training.kinds import kind_named  # noqa: E402

LENGTHS = (1, 29, 120)  # one step, JapaneseVowels' longest sequence, 4x that
STAGES = (0, 1, 50, 200, 300)  # 300: JapaneseVowels' training loss is near 0, PTB characters' near 2 nats
CLASSIFIERS: dict[str, dict[str, Any]] = {
    "lstm-last": {"cell": "lstm", "head": "last"},
    "gru-mean": {"cell": "gru", "head": "mean"},
    "bilstm-mean": {"cell": "lstm", "head": "mean", "bidirectional": True},
    "bigru2-last": {"cell": "gru", "head": "last", "bidirectional": True, "num_layers": 2},
}
LANGUAGE_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "lstm2-lm": ("language_model", {"cell": "lstm", "num_layers": 2}),
    "gru-lm-tied": ("language_model", {"cell": "gru", "tie_weights": True}),
}
KINDS = [*CLASSIFIERS, *LANGUAGE_MODELS]
MEASURED: dict[str, ParityReport] = {}


@cache
def _vowels() -> tuple[list[Any], Any, list[float], list[float]]:
    from rnnedge.data.sequences import read_sequences

    train = read_sequences(vowels("train"))
    rows = np.concatenate(train.sequences)
    mean, std = rows.mean(0), rows.std(0)
    sequences = [torch.from_numpy(((s - mean) / std).astype(np.float32)) for s in train.sequences]
    return sequences, torch.from_numpy(train.labels.astype(np.int64)), mean.tolist(), std.tolist()


@cache
def _characters() -> tuple[list[str], Any]:
    from conftest import _data_dir

    data = _data_dir()
    if data is None or not (data / "ptb" / "ptb.train.txt").is_file():
        pytest.skip("PTB not found: set RNNEDGE_DATA")
    text = (data / "ptb" / "ptb.train.txt").read_text()[:100_000]
    vocabulary = ["<unk>", "<eos>", *sorted(set(text) - {"\n"})]
    index = {c: i for i, c in enumerate(vocabulary)}
    return vocabulary, torch.tensor([index["<eos>"] if c == "\n" else index[c] for c in text])


def _checkpoint(name: str) -> tuple[dict[str, Any], Callable[[Any, np.random.Generator], Any]]:
    """A checkpoint of ``name``'s untrained network and the loss of one training batch for it."""
    if name in CLASSIFIERS:
        sequences, labels, mean, std = _vowels()
        config = SequenceClassifierConfig(input_size=12, num_classes=9, hidden_size=8, **CLASSIFIERS[name])
        checkpoint = {
            "kind": "sequence_classifier",
            "config": asdict(config),
            "standardize": {"mean": mean, "std": std},
            "labels": [str(k) for k in range(1, 10)],
        }

        def loss(model: Any, rng: np.random.Generator) -> Any:
            picked = rng.choice(len(sequences), 16, replace=False)
            batch = [sequences[i] for i in picked]
            lengths = torch.tensor([len(s) for s in batch])
            x = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)  # (16, T, 12)
            return torch.nn.functional.cross_entropy(model(x, lengths), labels[picked])

        return checkpoint, loss
    kind, fields = LANGUAGE_MODELS[name]
    vocabulary, ids = _characters()
    config = LanguageModelConfig(vocab_size=len(vocabulary), hidden_size=16, **fields)
    checkpoint = {"kind": kind, "config": asdict(config), "vocabulary": vocabulary, "tokens": "chars"}

    def lm_loss(model: Any, rng: np.random.Generator) -> Any:
        starts = rng.integers(0, len(ids) - 37, 8)
        windows = torch.stack([ids[s : s + 37] for s in starts])  # (8, 37)
        logits, _ = model(windows[:, :-1], model.init_state(8))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))

    return checkpoint, lm_loss


@cache
def _snapshots(name: str, seed: int) -> dict[int, dict[str, Any]]:
    """``name``'s checkpoint after each of :data:`STAGES` steps of Adam (lr 1e-2) from seed ``seed``: one run."""
    checkpoint, loss = _checkpoint(name)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    kind = kind_named(checkpoint["kind"])
    model = kind.module(kind.config(**checkpoint["config"]))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    snapshots = {}
    with _threads(1):  # a tiny network trains fastest on one thread
        for step in range(max(STAGES) + 1):
            if step in STAGES:
                snapshots[step] = {**checkpoint, "model": {k: v.clone() for k, v in model.state_dict().items()}}
            if step == max(STAGES):
                break
            model.train()
            value = loss(model, rng)
            optimiser.zero_grad()
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
    return snapshots


class _threads:
    def __init__(self, n: int) -> None:
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> None:
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)


def _file(built: Built, path: Path) -> Path:
    write_graph_metadata(built.graph, built.metadata)
    path.write_bytes(built.graph.SerializeToString())
    return path


def _check_matrix(name: str, seed: int, tmp_path: Path) -> None:
    for stage, checkpoint in _snapshots(name, seed).items():
        built = build_export(checkpoint)
        path = _file(built, tmp_path / f"{name}-{stage}.onnx")
        report = validate_export(path, built.reference, lengths=LENGTHS, chunkings=1, seed=seed)
        MEASURED[f"{name} seed {seed} step {stage}"] = report
        assert report.margin < 1 and not report.failures


@pytest.mark.parametrize("name", KINDS)
def test_no_valid_model_is_refused(name: str, tmp_path: Path) -> None:
    _check_matrix(name, 0, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", KINDS)
def test_no_valid_model_is_refused_other_seeds(name: str, seed: int, tmp_path: Path) -> None:
    _check_matrix(name, seed, tmp_path)


def test_measured_ratios_are_far_from_the_limit() -> None:
    """After the matrix: the largest share of an allowance any valid model used, and the distance ratios."""
    if not MEASURED:
        pytest.skip("the matrix did not run in this session")
    margin = max(r.margin for r in MEASURED.values())
    ratio = max(r.largest_distance_ratio for r in MEASURED.values())
    worst = max(MEASURED, key=lambda k: MEASURED[k].margin)
    print(
        f"\n{len(MEASURED)} models: largest share of an allowance {margin:.3f} ({worst}); "
        f"largest onnxruntime/PyTorch-float32 distance ratio where PyTorch's is above the floor {ratio:.2f}"
    )
    assert margin < 0.5 and ratio < FACTOR / 2


@pytest.mark.slow
def test_the_issue_repro_exports(data_dir: Path, tmp_path: Path) -> None:
    """``rnnedge train mnist-bilstm --max-steps 200`` then export was refused (``state h differs by up to 0.00016,
    1.2x its tolerance``). The same architecture (bidirectional LSTM of 128, mean head, MNIST rows) after 200
    steps, of 32 images instead of 128 to keep CI short, exports. Measured on the issue's own run (batch 128):
    onnxruntime 2.1e-4 from the exact ``h``, PyTorch-float32 4.9e-5: a ratio of 4.3, 27 % of the allowance."""
    from dataclasses import replace

    from rnnedge.data.mnist import mnist_files
    from rnnedge.export.exporter import export_checkpoint
    from rnnedge.training.config import MNIST_BILSTM
    from rnnedge.training.train_sequences import train_sequence_classifier

    train, test = mnist_files(data_dir)
    train_sequence_classifier(
        MNIST_BILSTM.model,
        replace(MNIST_BILSTM.train, max_steps=200, batch_size=32),
        tmp_path / "run",
        train_file=train,
        test_file=test,
        quiet=True,
        threads=1,
    )
    result = export_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "bilstm.onnx")
    parity = result.parity
    print(f"\nmnist-bilstm, 200 steps: share {parity.margin:.3f}, ratio {parity.largest_distance_ratio:.2f}")
    assert result.parity.margin < 0.5


# -- (b) broken graphs ----------------------------------------------------------------------------


def _node(graph: Any, op: str, direction: str | None = None) -> Any:
    for node in graph.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == op and (direction is None or attrs["direction"].s.decode() == direction):
            return node
    raise AssertionError(f"no {op} node")


def _initializer(graph: Any, name: str) -> Any:
    return next(i for i in graph.graph.initializer if i.name == name)


def _swap_gates(graph: Any, node: Any, gates: int, a: int, b: int) -> None:
    for position in (1, 2, 3):  # W, R, B
        init = _initializer(graph, node.input[position])
        value = numpy_helper.to_array(init).copy()
        blocks = np.split(value, gates * (2 if position == 3 else 1), axis=1)
        for offset in (0, gates) if position == 3 else (0,):
            blocks[offset + a], blocks[offset + b] = blocks[offset + b], blocks[offset + a]
        init.CopyFrom(numpy_helper.from_array(np.concatenate(blocks, axis=1), init.name))


def _set_attribute(node: Any, name: str, value: Any) -> None:
    for attr in node.attribute:
        if attr.name == name:
            if isinstance(value, int):
                attr.i = value
            else:
                attr.s = value.encode()


def _unwire(graph: Any, output: str) -> None:
    """``output`` becomes the state input it should update, passed through unchanged."""
    for node in graph.graph.node:
        node.output[:] = [f"{o}_lost" if o == output else o for o in node.output]
    graph.graph.node.append(onnx.helper.make_node("Identity", [output.removesuffix("_out")], [output]))


def _swapped_lstm(graph: Any) -> None:
    _swap_gates(graph, _node(graph, "LSTM"), 4, 1, 2)  # output and forget gates exchanged


def _swapped_gru(graph: Any) -> None:
    _swap_gates(graph, _node(graph, "GRU"), 3, 0, 1)  # update and reset gates exchanged


def _no_bias(graph: Any) -> None:
    node = _node(graph, "LSTM")
    node.input[3] = ""


def _reset_before(graph: Any) -> None:
    _set_attribute(_node(graph, "GRU"), "linear_before_reset", 0)


def _backward_run_forward(graph: Any) -> None:
    _set_attribute(_node(graph, "LSTM", "reverse"), "direction", "forward")


BROKEN: dict[str, tuple[Callable[[Any], None], str, dict[str, Any]]] = {
    "gates swapped (LSTM)": (_swapped_lstm, "sequence_classifier", {"cell": "lstm", "head": "mean"}),
    "gates swapped (GRU language model)": (_swapped_gru, "language_model", {"cell": "gru"}),
    "bias missing": (_no_bias, "language_model", {"cell": "lstm"}),
    "linear_before_reset flipped": (_reset_before, "sequence_classifier", {"cell": "gru", "head": "last"}),
    "backward direction run forward": (
        _backward_run_forward,
        "sequence_classifier",
        {"cell": "lstm", "head": "last", "bidirectional": True},
    ),
    "c_out not wired back": (lambda g: _unwire(g, "c_out"), "language_model", {"cell": "lstm"}),
    "h_out not wired back (GRU)": (
        lambda g: _unwire(g, "h_out"),
        "sequence_classifier",
        {"cell": "gru", "head": "mean", "num_layers": 2},
    ),
}


def _untrained(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    torch.manual_seed(0)
    if kind == "sequence_classifier":
        config: Any = SequenceClassifierConfig(input_size=5, num_classes=4, hidden_size=8, **fields)
        extra: dict[str, Any] = {"standardize": {"mean": [0.0] * 5, "std": [1.0] * 5}, "labels": list("abcd")}
    else:
        config = LanguageModelConfig(vocab_size=12, hidden_size=8, **fields)
        extra = {"vocabulary": ["<unk>", "<eos>", *"abcdefghij"], "tokens": "chars"}
    model = kind_named(kind).module(config)
    return {"kind": kind, "model": model.state_dict(), "config": asdict(config), **extra}


@pytest.mark.parametrize("defect", list(BROKEN))
def test_a_broken_graph_is_refused(defect: str, tmp_path: Path) -> None:
    """Each defect on an untrained model (the hardest case: small weights, gates near 0.5) is refused, typed."""
    mutate, kind, fields = BROKEN[defect]
    built = build_export(_untrained(kind, fields))
    quick = {"lengths": (1, 7, 28), "chunkings": 1}
    assert validate_export(_file(built, tmp_path / "right.onnx"), built.reference, **quick).margin < 1  # as written
    mutate(built.graph)
    with pytest.raises(ParityError) as info:
        validate_export(_file(built, tmp_path / "broken.onnx"), built.reference, **quick)
    failures = info.value.failures
    assert {f.kind for f in failures} <= {MismatchKind.VALUE, MismatchKind.STREAM, MismatchKind.SHAPE}
    worst = max(f.over for f in failures if f.kind is not MismatchKind.SHAPE)
    print(f"\n{defect}: {len(failures)} mismatches, the worst {worst:.3g}x its allowance")
    assert worst > 10, "a defect must be far outside float32 noise, not at its edge"
    assert "differs from the exact result by up to" in str(info.value)
