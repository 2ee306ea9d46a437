"""Training of the PTB word language model (Zaremba, Sutskever & Vinyals 2014).

The loop itself (checkpoints, resume, metrics, Ctrl-C) is :mod:`rnnedge.training.loop`'s;
this module is the language model's :class:`~rnnedge.training.loop.Task`. It follows the TF
reference ``tutorials/rnn/ptb``: truncated BPTT over ``batch_size`` parallel rows with the
state carried (detached) from window to window, plain SGD on the cost *summed over the
window's time steps* (averaged over the batch), global-norm clipping, and a learning rate
decayed once per epoch after ``decay_after`` epochs.

Deterministic given the seed: the data order is fixed, and a checkpoint holds the
carried LSTM state and the torch RNG state (dropout), so a run resumed mid-epoch replays
exactly what the uninterrupted run would have done.

Runs unchanged under ``torchrun`` (``WORLD_SIZE > 1``): each rank takes a contiguous
block of the ``batch_size`` rows, DDP averages the gradients (so the update equals the
single-process one), and rank 0 alone writes checkpoints and metrics.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rnnedge.data.corpus import TextCorpus
from rnnedge.data.ptb import PTBCorpus, batchify, num_windows, windows
from rnnedge.errors import CheckpointError, ConfigError

from .checkpoint import build_model
from .config import LARGE, MEDIUM, PRESETS, SMALL, LanguageModelConfig, LanguageTrainConfig, PTBPreset
from .loop import budget_steps, run_training, torch_threads
from .models import LANGUAGE_MODEL, RecurrentLanguageModel
from .run_dir import open_run

__all__ = [
    "LARGE",
    "MEDIUM",
    "PRESETS",
    "SMALL",
    "LanguageModelTask",
    "LanguageTrainConfig",
    "PTBPreset",
    "bits_per_token",
    "build_language_model",
    "evaluate_perplexity",
    "train_language_model",
]


def bits_per_token(perplexity: float) -> float:
    """Bits per token of a perplexity: ``log2(perplexity)`` (bits per character for a character model)."""
    return math.log2(perplexity)


def _with_bits(metrics: dict[str, float], tokens: str) -> dict[str, float]:
    """``metrics`` with ``*_bpc`` beside each ``*_perplexity`` for a character model."""
    if tokens != "chars":
        return metrics
    bits = {k.replace("perplexity", "bpc"): bits_per_token(v) for k, v in metrics.items() if k.endswith("perplexity")}
    return {**metrics, **bits}


def build_language_model(ckpt: dict[str, Any]) -> RecurrentLanguageModel:
    """Rebuild the language model a checkpoint describes, with its weights, in eval mode.

    Kept for callers written before the kind registry; new code calls
    :func:`rnnedge.training.kinds.build_from_checkpoint`.
    """
    return build_model(ckpt, LanguageModelConfig, RecurrentLanguageModel)


@torch.no_grad()
def evaluate_perplexity(
    model: RecurrentLanguageModel,
    ids: np.ndarray,
    batch_size: int = 1,
    num_steps: int = 35,
    device: str | torch.device = "cpu",
) -> float:
    """Perplexity of ``ids`` ``(N,)`` with the state carried across the whole stream.

    Batch 1 scores every token after the first (``N - 1`` predictions), exactly what the
    reference's test evaluation (batch 1, one step at a time) measures; ``num_steps``
    only sets the chunk size. A larger batch splits the stream into rows first.
    """
    was_training = model.training
    model.eval()
    rows = torch.from_numpy(batchify(ids, batch_size)).to(device)  # (B, L)
    state = tuple(s.to(device) for s in model.init_state(batch_size))
    total, count = 0.0, 0
    for lo in range(0, rows.shape[1] - 1, num_steps):
        x = rows[:, lo : lo + num_steps]  # (B, T)
        y = rows[:, lo + 1 : lo + num_steps + 1]  # (B, T')
        x = x[:, : y.shape[1]]
        logits, state = model(x, state)  # (B, T, V)
        total += float(nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
        count += y.numel()
    model.train(was_training)
    return math.exp(total / count)


def _lr_at(cfg: LanguageTrainConfig, epoch: int) -> float:
    return cfg.lr * cfg.lr_decay ** max(epoch + 1 - cfg.decay_after, 0)


def _detach(state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(s.detach() for s in state)


class _World:
    """This process's place in a (possibly one-process) job."""

    def __init__(self) -> None:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        self.started_here = False
        if size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            self.started_here = True
        self.distributed = dist.is_available() and dist.is_initialized()
        self.size = dist.get_world_size() if self.distributed else 1
        self.rank = dist.get_rank() if self.distributed else 0
        if torch.cuda.is_available():
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")

    def gather(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        """Every rank's ``t`` concatenated along ``dim`` (rank order)."""
        if not self.distributed:
            return t
        parts = [torch.empty_like(t) for _ in range(self.size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.started_here:
            dist.destroy_process_group()


def _rng_states(device: torch.device) -> torch.Tensor:
    """This process's generator states as one uint8 vector: the CPU's, then the GPU's when dropout runs there."""
    parts = [torch.get_rng_state()]
    if device.type == "cuda":
        parts.append(torch.cuda.get_rng_state(device))
    return torch.cat(parts)


def _set_rng_states(states: torch.Tensor, device: torch.device) -> None:
    """Restore what :func:`_rng_states` saved (a checkpoint from the CPU restores the CPU generator only)."""
    n = torch.get_rng_state().numel()
    torch.set_rng_state(states[:n].contiguous())
    if device.type == "cuda" and states.numel() > n:
        torch.cuda.set_rng_state(states[n:].contiguous(), device)


class LanguageModelTask:
    """The language model on a corpus (PTB, or any text by words or characters), for :func:`run_training`.

    The ``language_model`` kind (:class:`RecurrentLanguageModel`); its config's ``cell`` says LSTM or GRU layers.
    """

    def __init__(
        self,
        model_config: LanguageModelConfig,
        train_config: LanguageTrainConfig,
        corpus: PTBCorpus | TextCorpus,
        world: _World,
        name: str = "lm",
    ) -> None:
        self.name = name
        self.kind = LANGUAGE_MODEL.name
        self.tokens: str = getattr(corpus, "tokens", "words")
        self.files: tuple[str, ...] = corpus.files
        cfg = train_config
        if model_config.vocab_size != len(corpus.vocabulary):
            model_config = replace(model_config, vocab_size=len(corpus.vocabulary))
        if cfg.batch_size % world.size:
            raise ConfigError(f"batch_size {cfg.batch_size} must be a multiple of the world size {world.size}")
        self.model_config, self.train_config, self.corpus, self.world = model_config, cfg, corpus, world
        self.rank, self.world_size = world.rank, world.size
        self.rows_per_rank = cfg.batch_size // world.size
        all_rows = batchify(corpus.train, cfg.batch_size)  # (B, L)
        self.rows = all_rows[world.rank * self.rows_per_rank : (world.rank + 1) * self.rows_per_rank]  # (B/world, L)
        self.steps_per_epoch = num_windows(all_rows, cfg.num_steps)
        self.total_steps = budget_steps(self.steps_per_epoch, cfg)
        torch.manual_seed(cfg.seed)
        self.model = RecurrentLanguageModel(model_config).to(world.device)
        torch.manual_seed(cfg.seed * 1000 + 1 + world.rank)  # dropout masks differ between ranks
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr)
        self.net: nn.Module = DistributedDataParallel(self.model) if world.distributed else self.model
        self.state: tuple[torch.Tensor, ...] = tuple(
            s.to(world.device) for s in self.model.init_state(self.rows_per_rank)
        )
        self.cost_sum, self.counted = 0.0, 0  # this epoch's training cost so far (windows counted)
        self.lr = cfg.lr
        self.batches: Any = iter(())
        self.epoch_start = self.window_start = time.time()
        self.earlier_seconds = 0.0  # this epoch's seconds in the sessions before a resume
        self.timed = 0  # windows since window_start, for words/s

    def describe(self) -> str:
        world = self.world
        return (
            f"on {len(self.corpus.train)} {self.tokens[:-1]} tokens, vocabulary {len(self.corpus.vocabulary)} "
            f"({world.size} process{'es' if world.size > 1 else ''}, {world.device})"
        )

    def start_epoch(self, epoch: int, step_in_epoch: int) -> None:
        self.lr = _lr_at(self.train_config, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self.net.train()
        self.epoch_start = self.window_start = time.time()
        self.timed = 0
        if step_in_epoch == 0:
            self.state = tuple(torch.zeros_like(s) for s in self.state)
            self.cost_sum, self.counted = 0.0, 0
            self.earlier_seconds = 0.0
        self.batches = windows(self.rows, self.train_config.num_steps, step_in_epoch)

    def step(self, epoch: int, step_in_epoch: int, step: int) -> dict[str, str] | None:
        cfg, device = self.train_config, self.world.device
        x_np, y_np = next(self.batches)
        x = torch.from_numpy(x_np).to(device)  # (b, T)
        y = torch.from_numpy(y_np).to(device)  # (b, T)
        logits, new_state = self.net(x, self.state)  # (b, T, V)
        # The reference's cost: cross-entropy summed over the window, averaged over the batch.
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()) * cfg.num_steps
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_norm)
        self.optimizer.step()
        self.state = _detach(new_state)
        self.cost_sum += loss.item() / cfg.num_steps
        self.counted, self.timed = self.counted + 1, self.timed + 1
        if (step + 1) % 10:
            return None
        return {
            "ppl": f"{math.exp(self.cost_sum / self.counted):.1f}",
            "wps": f"{self._wps():.0f}",
            "lr": f"{self.lr:.3g}",
        }

    def _wps(self) -> float:
        words_per_step = self.train_config.batch_size * self.train_config.num_steps
        return words_per_step * self.timed / max(time.time() - self.window_start, 1e-9)

    def _epoch_seconds(self) -> float:
        return self.earlier_seconds + time.time() - self.epoch_start

    def train_record(self) -> dict[str, float]:
        return {
            "perplexity": math.exp(self.cost_sum / max(self.counted, 1)),
            "lr": self.lr,
            "words_per_sec": self._wps(),
        }

    def validate(self, epoch: int) -> tuple[dict[str, float], dict[str, Any], str]:
        cfg = self.train_config
        epoch_seconds = self._epoch_seconds()
        valid_ppl = evaluate_perplexity(self.model, self.corpus.valid, cfg.batch_size, cfg.num_steps, self.world.device)
        train_ppl = math.exp(self.cost_sum / max(self.counted, 1))
        record = {
            "perplexity": valid_ppl,
            "train_perplexity": train_ppl,
            "lr": self.lr,
            "epoch_seconds": round(epoch_seconds, 1),
        }
        bits = f" ({bits_per_token(valid_ppl):.3f} bpc)" if self.tokens == "chars" else ""
        line = (
            f"epoch {epoch + 1}: lr {self.lr:.4g}, train perplexity {train_ppl:.2f}, "
            f"valid perplexity {valid_ppl:.2f}{bits} ({epoch_seconds:.0f} s)"
        )
        return _with_bits({"valid_perplexity": valid_ppl}, self.tokens), _with_bits(record, self.tokens), line

    def test(self) -> tuple[dict[str, float], dict[str, Any], str]:
        # Batch 1 scores every token whatever the window; 100 tokens per call is just faster.
        test_ppl = evaluate_perplexity(self.model, self.corpus.test, 1, 100, self.world.device)
        bits = f" ({bits_per_token(test_ppl):.3f} bpc)" if self.tokens == "chars" else ""
        line = f"test perplexity {test_ppl:.2f}{bits} on {len(self.corpus.test)} tokens (batch 1, state carried)"
        return (
            _with_bits({"test_perplexity": test_ppl}, self.tokens),
            _with_bits({"perplexity": test_ppl}, self.tokens),
            line,
        )

    def checkpoint_fields(self) -> dict[str, Any]:
        # Collective: every rank contributes its rows' state and its RNG; rank 0 writes.
        world = self.world
        parts = {n: world.gather(s.detach(), 1).cpu() for n, s in zip(self.model.state_names, self.state, strict=True)}
        rng = world.gather(
            _rng_states(world.device)[None].to(world.device if world.device.type == "cuda" else "cpu"), 0
        )
        # Where the text came from: export measures the file's quality on its test text.
        files = dict(zip(("train", "valid", "test"), self.files, strict=False))
        split = getattr(self.corpus, "split", None)  # one file cut in three (--split): how
        return {
            **({"data": {"tokens": self.tokens, **files, **({"split": split} if split else {})}} if files else {}),
            # rank 0's running cost, and the epoch's seconds so far (a resumed epoch reports its whole time)
            "running": {"cost_sum": self.cost_sum, "counted": self.counted, "epoch_seconds": self._epoch_seconds()},
            "vocabulary": list(self.corpus.vocabulary),
            "tokens": self.tokens,
            "lm_state": parts,  # each (layers, B, H)
            "rng": rng.cpu(),
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        saved = (ckpt.get("tokens", "words"), tuple(ckpt.get("vocabulary") or ()))
        if saved != (self.tokens, tuple(self.corpus.vocabulary)):
            raise CheckpointError(
                f"cannot resume: the checkpoint was trained on other text ({saved[0]}, a vocabulary of "
                f"{len(saved[1])}); this run reads {self.tokens}, a vocabulary of {len(self.corpus.vocabulary)}"
            )
        # The epoch's running cost, so a resumed run logs the same training perplexity (older checkpoints lack it).
        running = ckpt["progress"].get("running", {})
        self.cost_sum, self.counted = running.get("cost_sum", 0.0), running.get("counted", 0)
        self.earlier_seconds = running.get("epoch_seconds", 0.0)
        mine = slice(self.rank * self.rows_per_rank, (self.rank + 1) * self.rows_per_rank)
        device = self.world.device
        self.state = tuple(ckpt["lm_state"][n][:, mine].to(device) for n in self.model.state_names)
        _set_rng_states(ckpt["rng"][self.rank].clone(), device)

    def barrier(self) -> None:
        self.world.barrier()


def train_language_model(
    model_config: LanguageModelConfig,
    train_config: LanguageTrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    corpus: PTBCorpus | TextCorpus,
    name: str = "lm",
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train on ``corpus`` in the run folder ``out_dir``; return the final metrics (with test perplexity).

    ``corpus``: the text read by :func:`rnnedge.data.corpus.load_text_corpus` (or PTB's, by
    :func:`rnnedge.data.ptb.load_ptb`); ``name`` is the command that trains it (``lm``, ``ptb``).

    A character corpus adds bits per character beside each perplexity (``valid_bpc``, ``test_bpc``).

    ``resume`` continues the folder's run; ``overwrite`` replaces it; a folder that holds a run
    is refused without one of them. ``threads`` sets torch's intra-op threads for the run: on a
    small, shared CPU one thread is often several times faster than the default.
    """
    world = _World()
    try:
        run = open_run(out_dir, resume=resume, overwrite=overwrite, quiet=quiet, writer=world.rank == 0)
        world.barrier()  # every process has looked at the folder before the first one writes in it
        with torch_threads(threads):
            task = LanguageModelTask(model_config, train_config, corpus, world, name=name)
            return run_training(task, run, resume=resume, quiet=quiet)
    finally:
        world.close()
