"""Training loop for the PTB word language model (Zaremba, Sutskever & Vinyals 2014).

Follows the TF reference ``tutorials/rnn/ptb``: truncated BPTT over ``batch_size``
parallel rows with the state carried (detached) from window to window, plain SGD on the
cost *summed over the window's time steps* (averaged over the batch), global-norm
clipping, and a learning rate decayed once per epoch after ``decay_after`` epochs.

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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rnnedge.data.ptb import batchify, load_ptb, num_windows, windows
from rnnedge.errors import CheckpointError, ConfigError

from .checkpoint import build_model, check_resumable, load_checkpoint, save_checkpoint
from .config_checks import check_config, int_at_least, number_in, optional
from .models import LanguageModelConfig, LMState, WordLanguageModel
from .plots import plot_if_available
from .progress import progress_bar
from .run_dir import RunDir

__all__ = [
    "LARGE",
    "MEDIUM",
    "PRESETS",
    "SMALL",
    "PTBPreset",
    "PTBTrainConfig",
    "build_language_model",
    "evaluate_perplexity",
    "train_language_model",
]

KIND = "ptb"
# Budget fields: a run may be resumed with a larger (or smaller) budget than it started with.
_BUDGET_FIELDS = ("epochs", "max_steps", "checkpoint_every")


@dataclass(frozen=True)
class PTBTrainConfig:
    """Optimisation settings of the reference.

    Epoch ``e`` (from 0) runs at ``lr * lr_decay ** max(e + 1 - decay_after, 0)``.
    """

    epochs: int = 13
    batch_size: int = 20
    num_steps: int = 20
    lr: float = 1.0
    lr_decay: float = 0.5
    decay_after: int = 4
    clip_norm: float = 5.0
    seed: int = 0
    max_steps: int | None = None
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        check_config(
            self,
            {
                "epochs": int_at_least(1),
                "batch_size": int_at_least(1),
                "num_steps": int_at_least(1),
                "lr": number_in(0, low_open=True),
                "lr_decay": number_in(0, 1, low_open=True),
                "decay_after": int_at_least(0),
                "clip_norm": number_in(0, low_open=True),
                "seed": int_at_least(0),
                "max_steps": optional(int_at_least(1)),
                "checkpoint_every": int_at_least(1),
            },
        )


@dataclass(frozen=True)
class PTBPreset:
    """A reference configuration: the network and how it is trained."""

    model: LanguageModelConfig
    train: PTBTrainConfig


SMALL = PTBPreset(
    LanguageModelConfig(hidden_size=200, num_layers=2, dropout=0.0, init_scale=0.1),
    PTBTrainConfig(epochs=13, num_steps=20, lr=1.0, lr_decay=0.5, decay_after=4, clip_norm=5.0),
)
MEDIUM = PTBPreset(
    LanguageModelConfig(hidden_size=650, num_layers=2, dropout=0.5, init_scale=0.05),
    PTBTrainConfig(epochs=39, num_steps=35, lr=1.0, lr_decay=0.8, decay_after=6, clip_norm=5.0),
)
LARGE = PTBPreset(
    LanguageModelConfig(hidden_size=1500, num_layers=2, dropout=0.65, init_scale=0.04),
    PTBTrainConfig(epochs=55, num_steps=35, lr=1.0, lr_decay=1 / 1.15, decay_after=14, clip_norm=10.0),
)
PRESETS = {"small": SMALL, "medium": MEDIUM, "large": LARGE}


def build_language_model(ckpt: dict[str, Any]) -> WordLanguageModel:
    """Rebuild the language model a checkpoint describes, with its weights, in eval mode."""
    return build_model(ckpt, LanguageModelConfig, WordLanguageModel)


@torch.no_grad()
def evaluate_perplexity(
    model: WordLanguageModel,
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


def _lr_at(cfg: PTBTrainConfig, epoch: int) -> float:
    return cfg.lr * cfg.lr_decay ** max(epoch + 1 - cfg.decay_after, 0)


def _detach(state: LMState) -> LMState:
    return state[0].detach(), state[1].detach()


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


def train_language_model(
    model_config: LanguageModelConfig,
    train_config: PTBTrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    resume: bool = False,
    quiet: bool = False,
    custom_corpus: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train on PTB, checkpointing to ``out_dir/checkpoint.pt``; return the final metrics (with test perplexity).

    ``threads`` sets torch's intra-op threads for the run: on a small, shared CPU one
    thread is often several times faster than the default, whose threads spin-wait.
    """
    world = _World()
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(model_config, train_config, Path(out_dir), world, data, resume, quiet, custom_corpus)
    finally:
        torch.set_num_threads(saved_threads)
        world.close()


def _train(
    model_config: LanguageModelConfig,
    cfg: PTBTrainConfig,
    out_dir: Path,
    world: _World,
    data: str | os.PathLike[str] | None,
    resume: bool,
    quiet: bool,
    custom_corpus: bool,
) -> dict[str, Any]:
    lead = world.rank == 0
    corpus = load_ptb(data, custom=custom_corpus)
    if model_config.vocab_size != len(corpus.vocabulary):
        model_config = replace(model_config, vocab_size=len(corpus.vocabulary))
    if cfg.batch_size % world.size:
        raise ConfigError(f"batch_size {cfg.batch_size} must be a multiple of the world size {world.size}")
    rows_per_rank = cfg.batch_size // world.size
    all_rows = batchify(corpus.train, cfg.batch_size)  # (B, L)
    my_rows = all_rows[world.rank * rows_per_rank : (world.rank + 1) * rows_per_rank]  # (B / world, L)
    steps_per_epoch = num_windows(all_rows, cfg.num_steps)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    run = RunDir(out_dir, quiet=quiet or not lead) if lead else None

    torch.manual_seed(cfg.seed)
    model = WordLanguageModel(model_config).to(world.device)
    torch.manual_seed(cfg.seed * 1000 + 1 + world.rank)  # dropout masks differ between ranks
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    state: LMState = tuple(s.to(world.device) for s in model.init_state(rows_per_rank))  # type: ignore[assignment]
    epoch, step_in_epoch, step, metrics = 0, 0, 0, {}
    cost_sum, counted = 0.0, 0  # this epoch's training cost so far (windows counted)
    earlier_seconds = 0.0
    ckpt_path = out_dir / "checkpoint.pt"

    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, KIND)
        check_resumable(ckpt, ckpt_path, asdict(model_config), asdict(cfg), _BUDGET_FIELDS)
        if ckpt["progress"].get("world_size", 1) != world.size:
            raise CheckpointError(
                f"cannot resume {ckpt_path}: it was written by {ckpt['progress'].get('world_size', 1)} processes, "
                f"this run has {world.size} (dropout RNG streams are per process)"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        epoch, step_in_epoch, step = (ckpt["progress"][k] for k in ("epoch", "step_in_epoch", "step"))
        earlier_seconds = float(ckpt["progress"].get("seconds", 0.0))
        # The epoch's running cost, so a resumed run logs the same training perplexity (older checkpoints lack it).
        running = ckpt["progress"].get("running", {})
        cost_sum, counted = running.get("cost_sum", 0.0), running.get("counted", 0)
        metrics = dict(ckpt["metrics"])
        mine = slice(world.rank * rows_per_rank, (world.rank + 1) * rows_per_rank)
        state = (ckpt["lm_state"]["h"][:, mine].to(world.device), ckpt["lm_state"]["c"][:, mine].to(world.device))
        _set_rng_states(ckpt["rng"][world.rank].clone(), world.device)
        if run is not None:
            run.start_metrics(step)
            run.log(f"resumed {KIND} from {ckpt_path} at epoch {epoch + 1}, step {step}")
    elif run is not None:
        run.start_metrics(None)
        run.log(
            f"training {KIND} {asdict(model_config)} with {asdict(cfg)} on {len(corpus.train)} tokens"
            f" ({world.size} process{'es' if world.size > 1 else ''}, {world.device})"
        )

    net: nn.Module = DistributedDataParallel(model) if world.distributed else model

    def checkpoint(done: bool = False) -> None:
        # Collective: every rank contributes its rows' state and its RNG; rank 0 writes.
        h = world.gather(state[0].detach(), 1).cpu()  # (layers, B, H)
        c = world.gather(state[1].detach(), 1).cpu()
        rng = world.gather(
            _rng_states(world.device)[None].to(world.device if world.device.type == "cuda" else "cpu"), 0
        )
        if run is not None:
            save_checkpoint(
                ckpt_path,
                {
                    "kind": KIND,
                    "model": model.state_dict(),
                    "config": asdict(model_config),
                    "train_config": asdict(cfg),
                    "optimizer": optimizer.state_dict(),
                    "metrics": metrics,
                    "progress": {
                        "epoch": epoch,
                        "step_in_epoch": step_in_epoch,
                        "step": step,
                        "done": done,
                        "world_size": world.size,
                        "seconds": earlier_seconds + time.time() - started,  # accumulates across resumes
                        "running": {"cost_sum": cost_sum, "counted": counted},  # rank 0's
                    },
                    "vocabulary": list(corpus.vocabulary),
                    "lm_state": {"h": h, "c": c},
                    "rng": rng.cpu(),
                },
            )

    started = time.time()
    words_per_step = cfg.batch_size * cfg.num_steps
    bar = progress_bar(total=total_steps, initial=step, desc=KIND, quiet=quiet or not lead)
    while step < total_steps:
        lr = _lr_at(cfg, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        net.train()
        epoch_start = window_start = time.time()
        timed = 0  # windows since window_start, for words/s
        if step_in_epoch == 0:
            state = tuple(torch.zeros_like(s) for s in state)  # type: ignore[assignment]
            cost_sum, counted = 0.0, 0
        for x_np, y_np in windows(my_rows, cfg.num_steps, step_in_epoch):
            if step >= total_steps:
                break
            x = torch.from_numpy(x_np).to(world.device)  # (b, T)
            y = torch.from_numpy(y_np).to(world.device)  # (b, T)
            logits, new_state = net(x, state)  # (b, T, V)
            # The reference's cost: cross-entropy summed over the window, averaged over the batch.
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()) * cfg.num_steps
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            optimizer.step()
            state = _detach(new_state)
            step, step_in_epoch = step + 1, step_in_epoch + 1
            cost_sum += loss.item() / cfg.num_steps
            counted, timed = counted + 1, timed + 1
            running_ppl = math.exp(cost_sum / counted)
            bar.update(1)
            if step % 10 == 0:
                wps = words_per_step * timed / max(time.time() - window_start, 1e-9)
                bar.set_postfix(ppl=f"{running_ppl:.1f}", wps=f"{wps:.0f}", lr=f"{lr:.3g}")
            if run is not None and step % 50 == 0:
                wps = words_per_step * timed / max(time.time() - window_start, 1e-9)
                run.record("train", step=step, epoch=epoch + 1, perplexity=running_ppl, lr=lr, words_per_sec=wps)
            if step % cfg.checkpoint_every == 0:
                checkpoint()
        if step_in_epoch >= steps_per_epoch or step >= total_steps:
            epoch_seconds = time.time() - epoch_start
            if run is not None:
                valid_ppl = evaluate_perplexity(model, corpus.valid, cfg.batch_size, cfg.num_steps, world.device)
                train_ppl = math.exp(cost_sum / max(counted, 1))
                metrics = {"valid_perplexity": valid_ppl, "epoch": epoch + 1, "step": step}
                run.record(
                    "valid",
                    step=step,
                    epoch=epoch + 1,
                    perplexity=valid_ppl,
                    train_perplexity=train_ppl,
                    lr=lr,
                    epoch_seconds=round(epoch_seconds, 1),
                )
                run.log(
                    f"epoch {epoch + 1}: lr {lr:.4g}, train perplexity {train_ppl:.2f}, "
                    f"valid perplexity {valid_ppl:.2f} ({epoch_seconds:.0f} s)"
                )
            if step_in_epoch >= steps_per_epoch:
                epoch, step_in_epoch = epoch + 1, 0
            checkpoint()
            world.barrier()
    bar.close()
    if run is not None:
        # Batch 1 scores every token whatever the window; 100 tokens per call is just faster.
        test_ppl = evaluate_perplexity(model, corpus.test, 1, 100, world.device)
        metrics = {
            **metrics,
            "test_perplexity": test_ppl,
            "train_seconds": round(earlier_seconds + time.time() - started, 1),
        }
        run.record("test", step=step, perplexity=test_ppl)
        run.log(f"test perplexity {test_ppl:.2f} on {len(corpus.test)} tokens (batch 1, state carried)")
    checkpoint(done=True)
    if run is not None:
        plot_if_available(run.path)
    world.barrier()
    return metrics
