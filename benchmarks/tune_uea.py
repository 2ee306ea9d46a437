"""`rnnedge train classifier --tune MINUTES` on UEA problems, scored through the runtime on the held-out test file.

For each problem: tune (settings chosen by cross-validation on the training file alone), export, then
`rnnedge classify --test` on the test file (the only time it is read for a number). Reports the time
taken, the chosen settings, the CV accuracy and the test accuracy beside the published reference and
this project's target, and writes it all as JSON (``--json PATH``) for the docs' benchmark pages.

    python benchmarks/tune_uea.py --minutes 10 --json tune_uea.json
    python benchmarks/tune_uea.py --problem GunPoint --minutes 2        # one problem, shorter
    python benchmarks/tune_uea.py --problem JapaneseVowels --causal-only --minutes 10 --json jv-causal.json

Data: ``$RNNEDGE_DATA/uea/NAME/NAME_TRAIN.ts`` and ``NAME_TEST.ts`` (any UEA/UCR problem laid out so).
``--jobs`` is passed on to ``--tune`` (default: the cores this process may use), one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# Published accuracies on the test split (the archive's reference results), and this project's targets.
# ItalyPowerDemand and ArrowHead: ROCKET's results/results_ucr.csv (mean of 10 runs) and InceptionTime's
# results-InceptionTime-128.csv, the authors' files; problems the search was not developed on.
REFERENCE = {
    "JapaneseVowels": {"InceptionTime": 0.992, "ROCKET": 0.992},
    "GunPoint": {"InceptionTime": 1.0, "ROCKET": 1.0},
    "ItalyPowerDemand": {"InceptionTime": 0.965, "ROCKET": 0.970},
    "ArrowHead": {"InceptionTime": 0.846, "ROCKET": 0.814},
}
TARGETS = {("JapaneseVowels", False): 0.985, ("GunPoint", False): 0.99}
DEFAULT_RUNS = (("JapaneseVowels", False), ("JapaneseVowels", True), ("GunPoint", False))


def rnnedge(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("rnnedge")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=True)


def run_one(
    uea: Path, problem: str, causal: bool, minutes: float, work: Path, threads: int, jobs: int | None
) -> dict[str, object]:
    train, test = uea / problem / f"{problem}_TRAIN.ts", uea / problem / f"{problem}_TEST.ts"
    name = f"{problem}-{'causal' if causal else 'any'}"
    out, onnx = work / name, work / f"{name}.onnx"
    args = ["train", "classifier", "--train", str(train), "--test", str(test), "--out", str(out), "--overwrite"]
    args += ["--tune", f"{minutes:g}", "--threads", str(threads), "--quiet", *(["--causal"] if causal else [])]
    args += ["--jobs", str(jobs)] if jobs is not None else []
    started = time.monotonic()
    metrics = json.loads(rnnedge(*args).stdout.strip().splitlines()[-1])
    seconds = time.monotonic() - started
    rnnedge("export", str(out / "checkpoint.pt"), "-o", str(onnx), "--force")
    report = json.loads(rnnedge("classify", str(onnx), "--test", str(test), "--json", "--quiet").stdout)
    tuning = json.loads((out / "tune.json").read_text())
    row = {
        "problem": problem,
        "causal_only": causal,
        "minutes": minutes,
        "wall_seconds": round(seconds, 1),
        "jobs": tuning["jobs"],
        "trials": len(tuning["trials"]),
        "finished_trials": sum(t["state"] == "complete" for t in tuning["trials"]),
        "pruned_trials": sum(t["state"] == "pruned" for t in tuning["trials"]),
        "final_seed": metrics["final_seed"],
        "final_fit_ok": metrics["final_fit_ok"],
        "final_train_accuracy": metrics["train_accuracy"],
        "folds": tuning["folds"],
        "chosen": metrics["chosen"],
        "cv_accuracy": metrics["cv_accuracy"],
        "pytorch_test_accuracy": metrics["test_accuracy"],
        "runtime_test_accuracy": report["accuracy"],
        "test_sequences": report["sequences"],
        "macro_f1": report["macro"]["f1"],
        "reference": REFERENCE.get(problem, {}),
        "target": TARGETS.get((problem, causal)),
    }
    target = row["target"]
    row["meets_target"] = None if target is None else report["accuracy"] >= float(target)  # type: ignore[arg-type]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="--tune budget of each run")
    parser.add_argument("--problem", action="append", help="only this problem (repeatable); causal and not")
    parser.add_argument("--causal-only", action="store_true", help="with --problem: only the --causal search")
    parser.add_argument("--any-only", action="store_true", help="with --problem: only the search without --causal")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each trial")
    parser.add_argument("--jobs", type=int, help="trials at once (default: --tune's, the cores)")
    parser.add_argument("--work", type=Path, default=Path("runs/tune_uea"), help="run folders and exported files")
    parser.add_argument("--json", type=Path, help="write the results here")
    a = parser.parse_args()
    data = os.environ.get("RNNEDGE_DATA") or str(Path(__file__).resolve().parents[2] / "shared" / "data")
    uea = Path(data) / "uea"
    kinds = [c for c in (False, True) if not (a.causal_only and not c) and not (a.any_only and c)]
    runs = [(p, c) for p in a.problem for c in kinds] if a.problem else list(DEFAULT_RUNS)
    a.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for problem, causal in runs:
        row = run_one(uea, problem, causal, a.minutes, a.work, a.threads, a.jobs)
        rows.append(row)
        print(
            f"{problem:16} {'causal' if causal else 'any   '}  runtime test accuracy "
            f"{row['runtime_test_accuracy']:.4f} "
            f"(CV {row['cv_accuracy']:.4f}, target {row['target']}, published {row['reference']}) in "
            f"{row['wall_seconds']:.0f} s with {row['jobs']} jobs, {row['finished_trials']} of {row['trials']} trials "
            f"finished ({row['pruned_trials']} pruned); final model seed {row['final_seed']}, training accuracy "
            f"{row['final_train_accuracy']:.4f}; chosen {row['chosen']}",
            flush=True,
        )
    result = {
        "benchmark": "tune_uea",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "runs": rows,
    }
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
