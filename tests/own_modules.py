"""Modules written the way users write them, and brief real training runs for them: for the own-module tests.

Each class is what a user's training script holds: layers made in ``__init__`` (in any order),
a ``forward`` of their own. Nothing here knows rnnedge.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


class VoiceActivityTagger(nn.Module):
    """A 2-layer GRU tagger, batch_first: one label per frame."""

    def __init__(self, channels: int = 12, classes: int = 3) -> None:
        super().__init__()
        self.gru = nn.GRU(channels, 16, num_layers=2, batch_first=True, dropout=0.1)
        self.dropout = nn.Dropout(0.1)
        self.out = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.gru(x)  # (B, T, 16)
        return self.out(self.dropout(y))  # (B, T, classes)


class TimeMajorBiLSTM(nn.Module):
    """A time-major bidirectional LSTM classifier, mean over time; its output layer made first."""

    def __init__(self, channels: int = 12, classes: int = 9) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * 12, classes)
        self.lstm = nn.LSTM(channels, 12, bidirectional=True)  # batch_first=False: (T, B, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)  # (T, B, 24)
        return self.fc(y.mean(dim=0))


class LastStepLSTM(nn.Module):
    """A 2-layer LSTM classifier on the last step's output, in an nn.Sequential-free style."""

    def __init__(self, channels: int = 12, classes: int = 9) -> None:
        super().__init__()
        self.encoder = nn.LSTM(channels, 16, num_layers=2, batch_first=True)
        self.classifier = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(x)  # (B, T, 16)
        return self.classifier(out[:, -1])


class TiedWordLM(nn.Module):
    """An LSTM word model with tied embedding and decoder (pytorch/examples' word_language_model)."""

    def __init__(self, vocab: int, dim: int = 16) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, batch_first=True)
        self.drop = nn.Dropout(0.2)
        self.decoder = nn.Linear(dim, vocab)
        self.decoder.weight = self.encoder.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.drop(self.encoder(ids)))
        return self.decoder(self.drop(out))


class CharGRU(nn.Module):
    """A GRU character model whose forward returns (logits, hidden)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 12)
        self.gru = nn.GRU(12, 20, batch_first=True)
        self.head = nn.Linear(20, vocab)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, last = self.gru(self.emb(ids))
        return self.head(h), last


class LstmGruTagger(nn.Module):
    """A tagger of two recurrent submodules: an LSTM, dropout, then a 2-layer GRU reading its outputs."""

    def __init__(self, channels: int = 12, classes: int = 3) -> None:
        super().__init__()
        self.rnn1 = nn.LSTM(channels, 16, batch_first=True)
        self.drop = nn.Dropout(0.2)
        self.rnn2 = nn.GRU(16, 10, num_layers=2, batch_first=True)
        self.out = nn.Linear(10, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn1(x)  # (B, T, 16)
        y, _ = self.rnn2(self.drop(y))  # (B, T, 10)
        return self.out(y)


class StackedLstmClassifier(nn.Module):
    """An LSTM feeding a time-major LSTM of its own size, classified on the last step."""

    def __init__(self, channels: int = 12, classes: int = 9) -> None:
        super().__init__()
        self.lower = nn.LSTM(channels, 14, batch_first=True)
        self.upper = nn.LSTM(14, 14, bias=False)  # batch_first=False: (T, B, 14)
        self.fc = nn.Linear(14, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lower(x)  # (B, T, 14)
        y, _ = self.upper(y.transpose(0, 1))  # (T, B, 14)
        return self.fc(y[-1])


class BiLstmGruClassifier(nn.Module):
    """A bidirectional LSTM then a bidirectional GRU, mean over time: both re-read the whole sequence."""

    def __init__(self, channels: int = 12, classes: int = 9) -> None:
        super().__init__()
        self.lstm = nn.LSTM(channels, 8, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(16, 6, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.gru(self.lstm(x)[0])  # (B, T, 12)
        return self.fc(y.mean(1))


def data_dir() -> Path | None:
    for candidate in (os.environ.get("RNNEDGE_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "uea" / "JapaneseVowels").is_dir():
            return Path(candidate)
    return None


def vowels() -> tuple[list[np.ndarray], np.ndarray]:
    """JapaneseVowels' training sequences (12 channels, 7-29 frames), standardised per channel, and labels."""
    from rnnedge.data.sequences import read_sequences

    root = data_dir()
    assert root is not None
    train = read_sequences(root / "uea" / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts")
    rows = np.concatenate(train.sequences)
    mean, std = rows.mean(0), rows.std(0)
    return [((s - mean) / std).astype(np.float32) for s in train.sequences], train.labels.astype(np.int64)


def frame_labels(sequence: np.ndarray) -> np.ndarray:
    """A per-frame target for the tagger: which third of the channel-0 range the frame's value is in."""
    return np.digitize(sequence[:, 0], [-0.5, 0.5]).astype(np.int64)


def ptb_tokens(chars: bool, limit: int = 40_000) -> tuple[list[str], torch.Tensor]:
    """PTB's first ``limit`` characters as ids: words (the 60 commonest, others <unk>) or characters."""
    root = data_dir()
    assert root is not None
    text = (root / "ptb" / "ptb.train.txt").read_text()[:limit]
    if chars:
        vocab = ["<unk>", "<eos>", *sorted(set(text) - {"\n"})]
        index = {c: i for i, c in enumerate(vocab)}
        ids = [index["<eos>"] if c == "\n" else index[c] for c in text]
    else:
        words = text.replace("\n", " <eos> ").split()
        common = sorted({w for w in words if words.count(w) > 40} - {"<unk>", "<eos>"})[:60]
        vocab = ["<unk>", "<eos>", *common]
        index = {w: i for i, w in enumerate(vocab)}
        ids = [index.get(w, 0) for w in words]
    return vocab, torch.tensor(ids)


def train_briefly(module: nn.Module, task: str, steps: int = 60, seed: int = 0, **data: Any) -> nn.Module:
    """``steps`` of Adam (lr 1e-2) on real data, as a user's own loop would: the module is trained in place."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-2)
    module.train()
    for _ in range(steps):
        if task == "language-model":
            ids = data["ids"]
            starts = rng.integers(0, len(ids) - 21, 8)
            windows = torch.stack([ids[s : s + 21] for s in starts])
            out = module(windows[:, :-1])
            logits = out[0] if isinstance(out, tuple) else out
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
        else:
            sequences, labels = data["sequences"], data["labels"]
            picked = rng.choice(len(sequences), 16, replace=False)
            length = min(len(sequences[i]) for i in picked)  # a user's simplest batching: cut to the shortest
            x = torch.from_numpy(np.stack([sequences[i][:length] for i in picked]))
            time_major = data.get("time_major", False)
            out = module(x.transpose(0, 1) if time_major else x)
            if task == "tagger":
                y = torch.from_numpy(np.stack([frame_labels(sequences[i][:length]) for i in picked]))
                loss = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
            else:
                loss = nn.functional.cross_entropy(out, torch.from_numpy(labels[picked]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return module.eval()


@cache
def _words() -> tuple[list[str], Any]:
    return ptb_tokens(chars=False)


@cache
def _chars() -> tuple[list[str], Any]:
    return ptb_tokens(chars=True)


# name -> (make the module, task, export options); module_case trains it on its task's data
CASES: dict[str, tuple[Callable[[], nn.Module], str, dict[str, Any]]] = {
    "gru2-tagger": (VoiceActivityTagger, "tagger", {"labels": ["low", "mid", "high"]}),
    "time-major-bilstm-mean": (TimeMajorBiLSTM, "classifier", {"head": "mean", "time_major": True}),
    "lstm2-last": (LastStepLSTM, "classifier", {"head": "last"}),
    "tied-word-lstm": (lambda: TiedWordLM(len(_words()[0])), "language-model", {}),
    "char-gru": (lambda: CharGRU(len(_chars()[0])), "language-model", {"tokens": "chars"}),
    # more than one recurrent submodule, each reading the previous one's outputs
    "lstm-gru2-tagger": (LstmGruTagger, "tagger", {}),
    "lstm-lstm-last": (StackedLstmClassifier, "classifier", {"head": "last"}),
    "bilstm-bigru-mean": (BiLstmGruClassifier, "classifier", {"head": "mean"}),
}


@cache  # one training run per module, shared by every test that exports it (export copies it)
def module_case(name: str, trained: bool) -> tuple[nn.Module, dict[str, Any]]:
    make, task, options = CASES[name]
    torch.manual_seed(1)
    module = make()
    options = dict(options)
    if task == "language-model":
        vocab, ids = _chars() if options.get("tokens") == "chars" else _words()
        options["vocabulary"] = vocab
        data: dict[str, Any] = {"ids": ids}
    else:
        sequences, labels = vowels()
        data = {"sequences": sequences, "labels": labels, "time_major": options.get("time_major", False)}
    if trained:
        train_briefly(module, task, **data)
    return module.eval(), {"task": task, **options}


@torch.no_grad()
def forward_probs(module: nn.Module, x: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """The module's own probabilities: its forward on the batch ``x``, softmaxed (per frame, or the last)."""
    tensor = torch.from_numpy(x)
    if options.get("time_major"):
        tensor = tensor.transpose(0, 1)
    out = module(tensor)
    logits = out[0] if isinstance(out, tuple) else out
    if options["task"] == "language-model":
        logits = logits[:, -1]
    return torch.softmax(logits, -1).numpy()
