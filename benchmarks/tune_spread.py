"""How much of a `--tune` run's test accuracy is the luck of one final model: seeds and near-tied candidates.

A search chooses settings by cross-validation; its final model is one training run of them. This trains
the chosen settings again with ``--seeds`` seeds, and (``--trials K``) the K best trials by CV score with
the first seed, each on the whole training file exactly as the search's final model is trained
(:func:`rnnedge.training.tune.final_configs`), and scores each on the run's test file. It prints each
model's test accuracy, their spread, and the accuracy of the mean of their probabilities (an ensemble of
the seeds; of the first 1..K trials), so the chosen model's number reads against its own noise.

    python benchmarks/tune_spread.py runs/jv --seeds 10 --trials 10 --json spread.json

Accuracies are PyTorch's on the test file (an export of each is validated against it before it is written;
the search's own number is the runtime's). The run folder is only read; the models train in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnedge.training.checkpoint import build_model, load_checkpoint
from rnnedge.training.config import SequenceClassifierConfig, SequenceTrainConfig
from rnnedge.training.models import SequenceClassifier
from rnnedge.training.train_sequences import as_tensors, load_sequence_data, train_sequence_classifier
from rnnedge.training.tune import final_configs


def fit_and_score(
    run: dict[str, Any], candidate: dict[str, Any], seed: int, out: Path, threads: int
) -> tuple[float, np.ndarray]:
    """Train ``candidate`` with ``seed`` on the whole training file in ``out``; its test accuracy and probabilities."""
    data, files = run["data"], run["files"]
    model_cfg, train_cfg = final_configs(run["model_config"], run["train_config"], candidate, len(data.train))
    train_sequence_classifier(
        model_cfg,
        replace(train_cfg, seed=seed),
        out,
        train_file=files["train"],
        test_file=files["test"],
        quiet=True,
        threads=threads,
        data=data,
    )
    model = build_model(load_checkpoint(out / "checkpoint.pt"), SequenceClassifierConfig, SequenceClassifier).eval()
    x, lengths, y = run["test"]
    with torch.no_grad():
        probs = torch.softmax(model(x, lengths), dim=1).numpy()  # (N, C)
    return float((probs.argmax(1) == y).mean()), probs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a `rnnedge train classifier --tune` run folder (tune.json, checkpoint)")
    ap.add_argument("--seeds", type=int, default=10, help="final models of the chosen settings, seeds 0..N-1")
    ap.add_argument("--trials", type=int, default=0, help="also the K best trials by CV score, seed 0 each")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None, help="where the models train (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    tuning = json.loads((args.run / "tune.json").read_text())
    ckpt = load_checkpoint(args.run / "checkpoint.pt")
    files = ckpt["data"]
    train_cfg = SequenceTrainConfig(**ckpt["train_config"])  # the run's own settings; each candidate's on top
    run = {
        "files": files,
        "model_config": SequenceClassifierConfig(),
        "train_config": train_cfg,
        "data": load_sequence_data(
            files["train"], files["test"], valid_fraction=0.0, per_channel=train_cfg.normalize == "channel"
        ),
    }
    x, lengths, labels = as_tensors(run["data"].test)
    y = labels.numpy()
    run["test"] = (x, lengths, y)
    started = time.monotonic()
    result: dict[str, Any] = {"benchmark": "tune_spread", "run": str(args.run), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        chosen = tuning["chosen"]
        seeds = []
        for seed in range(args.seeds):
            acc, probs = fit_and_score(run, chosen, seed, work / "seeds" / str(seed), args.threads)
            seeds.append((acc, probs))
            print(f"chosen trial {chosen['trial']}, seed {seed}: test accuracy {acc:.4f}", flush=True)
        if seeds:
            accs = [a for a, _ in seeds]
            together = float((np.mean([p for _, p in seeds], axis=0).argmax(1) == y).mean())
            result["seeds"] = {
                "trial": chosen["trial"],
                "cv_accuracy": chosen["accuracy"],
                "test_accuracy": accs,
                "median": statistics.median(accs),
                "min": min(accs),
                "max": max(accs),
                "ensemble": together,
            }
            print(
                f"chosen settings over {len(accs)} seeds: median {statistics.median(accs):.4f} "
                f"(min {min(accs):.4f}, max {max(accs):.4f}); the mean of their probabilities {together:.4f}"
            )
        ranked = sorted(
            (t for t in tuning["trials"] if t.get("state") == "complete" and "steps" in t), key=lambda t: -t["score"]
        )[: args.trials]
        trials, probs_so_far = [], []
        for t in ranked:
            acc, probs = fit_and_score(run, t, 0, work / "trials" / str(t["number"]), args.threads)
            probs_so_far.append(probs)
            top = float((np.mean(probs_so_far, axis=0).argmax(1) == y).mean())
            trials.append(
                {"trial": t["number"], "cv_accuracy": t["accuracy"], "test_accuracy": acc, "best_together": top}
            )
            print(
                f"trial {t['number']} (CV {t['accuracy']:.4f}, {t['params']['cell']} {t['params']['num_layers']}x"
                f"{t['params']['hidden_size']} {t['params']['head']}): test accuracy {acc:.4f}; the {len(trials)} best "
                f"together {top:.4f}",
                flush=True,
            )
        if args.trials and len(ranked) < args.trials:
            print(f"({len(ranked)} finished trials record their steps; older tune.json files do not)")
        result["trials"] = trials
    result["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
