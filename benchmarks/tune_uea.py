"""`rnnedge train classifier --tune MINUTES` on UEA problems, scored through the runtime on the held-out test file.

For each problem: tune (settings chosen by cross-validation on the training file alone), export, then
`rnnedge classify --test` on the test file (the only time it is read for a number). Reports the time
taken, the chosen settings, the CV accuracy and the test accuracy beside the published reference and
this project's target, and writes it all as JSON (``--json PATH``) for the docs' benchmark pages.

    python benchmarks/tune_uea.py --minutes 10 --json tune_uea.json
    python benchmarks/tune_uea.py --problem GunPoint --minutes 2        # one problem, shorter

Data: ``$RNNEDGE_DATA/uea/NAME/NAME_TRAIN.ts`` and ``NAME_TEST.ts`` (any UEA/UCR problem laid out so).
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
REFERENCE = {
    "JapaneseVowels": {"InceptionTime": 0.992, "ROCKET": 0.992},
    "GunPoint": {"InceptionTime": 1.0, "ROCKET": 1.0},
}
TARGETS = {("JapaneseVowels", False): 0.985, ("GunPoint", False): 0.99}
DEFAULT_RUNS = (("JapaneseVowels", False), ("JapaneseVowels", True), ("GunPoint", False))


def rnnedge(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("rnnedge")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=True)


def run_one(uea: Path, problem: str, causal: bool, minutes: float, work: Path, threads: int) -> dict[str, object]:
    train, test = uea / problem / f"{problem}_TRAIN.ts", uea / problem / f"{problem}_TEST.ts"
    name = f"{problem}-{'causal' if causal else 'any'}"
    out, onnx = work / name, work / f"{name}.onnx"
    args = ["train", "classifier", "--train", str(train), "--test", str(test), "--out", str(out), "--overwrite"]
    args += ["--tune", f"{minutes:g}", "--threads", str(threads), "--quiet", *(["--causal"] if causal else [])]
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
        "trials": len(tuning["trials"]),
        "finished_trials": sum(t["state"] == "complete" for t in tuning["trials"]),
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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("runs/tune_uea"), help="run folders and exported files")
    parser.add_argument("--json", type=Path, help="write the results here")
    a = parser.parse_args()
    data = os.environ.get("RNNEDGE_DATA") or str(Path(__file__).resolve().parents[2] / "shared" / "data")
    uea = Path(data) / "uea"
    runs = [(p, c) for p in a.problem for c in (False, True)] if a.problem else list(DEFAULT_RUNS)
    a.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for problem, causal in runs:
        row = run_one(uea, problem, causal, a.minutes, a.work, a.threads)
        rows.append(row)
        print(
            f"{problem:16} {'causal' if causal else 'any   '}  runtime test accuracy "
            f"{row['runtime_test_accuracy']:.4f} "
            f"(CV {row['cv_accuracy']:.4f}, target {row['target']}) in {row['wall_seconds']:.0f} s, "
            f"{row['finished_trials']}/{row['trials']} trials; chosen {row['chosen']}",
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
