"""A file exported from a user's own module steps at the same speed as the same architecture trained by rnnedge.

    python benchmarks/own_module_step.py [--hidden 128] [--layers 2] [--cell lstm]

One run, interleaved: the streaming step (``Stream.feed`` of one raw row, batch 1) of two files
of one architecture: rnnedge's own sequence classifier (``export_checkpoint``'s graph) and a
user-style ``nn.Module`` holding the same ``nn.LSTM``/``nn.GRU`` and ``nn.Linear`` (last-step
head), exported with ``export_module``. Both carry the same weights; the medians and their ratio
are printed. A feed of one row at a time, restarted every 28 rows so that both do the same work.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnedge.bench import format_table, interleaved, summarize
from rnnedge.export import export_module
from rnnedge.export.exporter import export_checkpoint
from rnnedge.runtime import load
from rnnedge.training.checkpoint import save_checkpoint
from rnnedge.training.config import SequenceClassifierConfig
from rnnedge.training.models import SequenceClassifier


class UsersClassifier(nn.Module):
    """What a user writes: their own recurrent layer and output layer, the last step classified."""

    def __init__(self, cell: str, features: int, hidden: int, layers: int, classes: int) -> None:
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(features, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0][:, -1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = SequenceClassifierConfig(
        input_size=28, num_classes=10, hidden_size=args.hidden, num_layers=args.layers, cell=args.cell, head="last"
    )
    ours = SequenceClassifier(config)
    users = UsersClassifier(args.cell, 28, args.hidden, args.layers, 10)
    users.rnn.load_state_dict(ours.rnn.state_dict())
    users.fc.load_state_dict(ours.head.state_dict())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_checkpoint(
            folder / "ours.pt",
            {
                "kind": "sequence_classifier",
                "model": ours.state_dict(),
                "config": asdict(config),
                "standardize": {"mean": [0.0] * 28, "std": [1.0] * 28},
                "labels": [str(k) for k in range(10)],
                "metrics": {},
            },
        )
        trained_by_rnnedge = export_checkpoint(folder / "ours.pt", folder / "ours.onnx").path
        from_module = export_module(users, folder / "users.onnx", task="classifier", head="last").path
        row = np.random.default_rng(0).standard_normal(28).astype(np.float32)
        with load(trained_by_rnnedge) as a, load(from_module) as b:
            streams = {"rnnedge's own (export_checkpoint)": a.stream(), "user's module (export_module)": b.stream()}
            np.testing.assert_allclose(a.predict(row[None, None]), b.predict(row[None, None]), atol=1e-6)
            contenders = {name: (lambda s=s: s.feed(row)) for name, s in streams.items()}
            samples: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(args.rounds):
                for s in streams.values():
                    s.reset()
                for name, values in interleaved(contenders, rounds=5, inner=28).items():
                    samples[name].extend(values)
                    for s in streams.values():
                        s.reset()
    summaries = {name: summarize(values) for name, values in samples.items()}
    print(f"Stream.feed of one row, batch 1, {args.cell} {args.layers}x{args.hidden}, 28 features, last-step head")
    print(format_table(summaries, "rnnedge's own (export_checkpoint)"))


if __name__ == "__main__":
    main()
