"""``train classifier --tune``: real searches on a real UEA subset with tiny budgets.

The problem is GunPoint's first 36 training cases (a real small problem); candidates are kept cheap by
fixing ``--hidden 8`` and giving ``--epochs 4 --patience 2``, so a trial takes seconds.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sequence_models import first_cases, gunpoint

pytest.importorskip("optuna", reason="--tune needs the tune extra")

from rnnedge.cli.main import cli
from rnnedge.training.checkpoint import load_checkpoint
from rnnedge.training.config import SequenceClassifierConfig, SequenceTrainConfig
from rnnedge.training.tune import FIRST_CONV

CHEAP = ["--hidden", "8", "--epochs", "4", "--patience", "2", "--threads", "1", "--jobs", "1"]
# The Ctrl-C tests time their signals by the trials' progress: without the (slower) convolutional candidate,
# the first candidates are the two cells' defaults.
NO_CONV = [*CHEAP, "--conv", "0"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GunPoint's first 36 training cases, as a .ts file of its own."""
    return first_cases(gunpoint("train"), 36, tmp_path_factory.mktemp("gp") / "GunPoint36_TRAIN.ts")


def tune_args(small: Path, out: Path, minutes: str, *extra: str) -> list[str]:
    test = str(gunpoint("test"))
    return ["train", "classifier", "--train", str(small), "--test", test, "--out", str(out), "--tune", minutes, *extra]


def test_tune_searches_on_the_training_file_and_reads_the_test_file_once_at_the_end(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rnnedge.training.train_sequences as train_sequences
    import rnnedge.training.tune as tune

    reads: list[tuple[str, Any]] = []  # (file, the tune.json present when it was read)
    real = train_sequences.read_sequences

    def spy(path: Any, **kw: Any) -> Any:
        summary = tmp_path / "run" / "tune.json"
        reads.append((str(Path(path).resolve()), json.loads(summary.read_text()) if summary.exists() else None))
        return real(path, **kw)

    monkeypatch.setattr(train_sequences, "read_sequences", spy)
    monkeypatch.setattr(tune, "read_sequences", spy)
    result = CliRunner().invoke(cli, tune_args(small, tmp_path / "run", "0.2", *CHEAP, "--quiet"))
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    test_file = str(gunpoint("test").resolve())
    tests = [summary for path, summary in reads if path == test_file]
    assert len(tests) == 1, reads  # read once ...
    assert tests[0] is not None and tests[0]["chosen"] is not None  # ... after the search had chosen
    assert reads[-1][0] == test_file

    summary = json.loads((tmp_path / "run" / "tune.json").read_text())
    done = [t for t in summary["trials"] if t["state"] == "complete"]
    assert done and summary["folds"] == "5 folds (stratified k-fold)" and summary["cases"] == 36
    assert all(("score" in t) == (t["state"] == "complete") for t in summary["trials"]), summary["trials"]
    # The time left, said one way on every line: for trials, beside the final model's share; the two together
    # (the whole budget left) only shrink from line to line (each figure is rounded down to the second).
    log = (tmp_path / "run" / "tune.log").read_text()
    assert "of the budget left" not in log
    said = re.findall(r"(\d+):(\d\d) left for trials(?: \((\d+):(\d\d) kept for the final model\))?", log)
    assert len(said) >= len(done) + 1, log  # the opening line and each finished trial's
    budget_left = [60 * int(m) + int(s) + 60 * int(fm or 0) + int(fs or 0) for m, s, fm, fs in said]
    assert all(later <= earlier + 2 for earlier, later in itertools.pairwise(budget_left)), log
    assert all(t["params"]["hidden_size"] == 8 and len(t["fold_accuracy"]) == 5 for t in done)  # --hidden kept
    first = summary["trials"][0]["params"]  # the defaults are the first candidate
    assert (first["cell"], first["head"], first["lr"]) == ("lstm", "mean", 3e-3)
    chosen = summary["chosen"]
    best = max(done, key=lambda t: t["score"])
    assert chosen["trial"] == best["number"] and chosen["accuracy"] == metrics["cv_accuracy"]

    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["tuning"]["chosen"] == chosen and ckpt["tuning"]["trials"] == summary["trials"]
    trained = ckpt["train_config"]  # the folds' best steps, in the whole file's epochs
    assert trained["max_steps"] == chosen["steps"] and trained["valid_fraction"] == 0 and trained["patience"] == 0
    assert (trained["epochs"] - 1) * math.ceil(36 / trained["batch_size"]) < chosen["steps"]
    assert all(t["steps"] >= 1 for t in done) and best["steps"] == chosen["steps"]  # each trial's, for tune_spread
    _, again = tune.final_configs(SequenceClassifierConfig(), SequenceTrainConfig(**trained), best, 36)
    resolved = {**asdict(again), "batch_size": train_sequences.batch_size_for(36, again.batch_size)}  # None: auto
    assert resolved == trained  # a trial's record retrains as the final model did (benchmarks/tune_spread.py)
    second = summary["trials"][1]["params"]  # then the defaults with a convolutional branch, then the other cell
    assert second == {**first, "conv_channels": FIRST_CONV}
    assert summary["trials"][2:3] == [] or summary["trials"][2]["params"] == {**first, "cell": "gru"}
    assert {k: ckpt["config"][k] for k in ("cell", "hidden_size", "head")} == {
        k: chosen["params"][k] for k in ("cell", "hidden_size", "head")
    }
    assert 0 <= metrics["test_accuracy"] <= 1 and ckpt["metrics"]["test_accuracy"] == metrics["test_accuracy"]

    shown = CliRunner().invoke(cli, ["info", str(tmp_path / "run" / "checkpoint.pt")])
    assert shown.exit_code == 0, shown.output
    assert f"chosen: trial {chosen['trial']}, CV accuracy {chosen['accuracy']:.4f}" in shown.output
    assert "5 folds (stratified k-fold) on 36 training cases" in shown.output
    exported = tmp_path / "tuned.onnx"
    assert (
        CliRunner().invoke(cli, ["export", str(tmp_path / "run" / "checkpoint.pt"), "-o", str(exported)]).exit_code == 0
    )
    shown = CliRunner().invoke(cli, ["info", str(exported)])
    assert f"chosen: trial {chosen['trial']}, CV accuracy {chosen['accuracy']:.4f}" in shown.output
    assert json.loads(CliRunner().invoke(cli, ["info", "--json", str(exported)]).output)["config"]["tuning"] == summary


def test_causal_searches_streamable_models_only(small: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, tune_args(small, tmp_path / "run", "0.15", *CHEAP, "--causal", "--quiet"))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "tune.json").read_text())
    assert summary["causal"] and summary["trials"]
    assert all(t["params"]["bidirectional"] is False and t["params"]["conv_channels"] == 0 for t in summary["trials"])
    config = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["config"]
    assert config["bidirectional"] is False and config["conv_channels"] == 0


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT's default in the child, whatever the runner's: a background shell's jobs ignore it, and a Python
    started so would lose a Ctrl-C that comes between two trials (no training loop's handler installed)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(command: list[str], until: Callable[[], bool], *, group: bool = False) -> str:
    """Run ``command`` until ``until()`` holds, then Ctrl-C it; its stderr, once it has stopped as a Ctrl-C does.

    ``group``: the Ctrl-C goes to every process of the command, as a terminal sends it, not to the command alone.
    """
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
        start_new_session=group,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and not until():
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "search interrupted" in err and "--resume" in err and "Traceback" not in err
    return err


def _started(out: Path, trial: int) -> bool:
    """Whether ``tune.log`` says ``trial`` has begun."""
    log = out / "tune.log"
    return log.exists() and re.search(rf"^trial {trial}: ", log.read_text(), re.MULTILINE) is not None


def _trials(out: Path) -> list[dict[str, Any]]:
    summary = out / "tune.json"
    return json.loads(summary.read_text())["trials"] if summary.exists() else []


def test_ctrl_c_keeps_the_finished_trials_and_resume_continues_the_search(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "rnnedge.cli.main", *tune_args(small, out, "5", *NO_CONV)]
    _interrupt(command, lambda: _started(out, 1))  # trial 0 (the defaults) finished, trial 1 (the other cell) cut off
    assert (out / "tune.db").is_file() and not (out / "checkpoint.pt").exists()
    first = _trials(out)
    assert [t["state"] for t in first] == ["complete", "fail"] and first[1]["params"]["cell"] == "gru", first

    refused = CliRunner().invoke(cli, tune_args(small, out, "5", *NO_CONV))  # the search is a run: not replaced
    assert refused.exit_code != 0 and "already holds a training run" in refused.output and "--resume" in refused.output
    other = CliRunner().invoke(cli, tune_args(small, out, "5", "--hidden", "16", "--epochs", "4", "--resume"))
    assert other.exit_code == 1 and "started with other fixed" in other.output

    # Resumed, the candidate cut off comes again before the sampler's own: both cells' defaults are measured.
    _interrupt([*command, "--resume"], lambda: any(t["state"] == "pruned" for t in _trials(out)))
    resumed = _trials(out)[2]
    assert resumed["state"] == "complete" and resumed["params"] == first[1]["params"], resumed
    assert "queued again" in (out / "tune.log").read_text()
    # Optuna gives a pruned trial its last report as a value; it is no score (a pruned trial counts for nothing).
    optuna = pytest.importorskip("optuna")
    study = optuna.load_study(study_name="rnnedge-tune", storage=f"sqlite:///{out / 'tune.db'}")
    assert [t for t in study.trials if t.state.name == "PRUNED" and t.value is not None], "no pruned trial to check"
    assert all(("score" in t) == (t["state"] == "complete") for t in _trials(out)), _trials(out)
    before = [t for t in _trials(out) if t["state"] == "complete"]

    # The budget was 5 minutes in all; resumed with 0.01 it has none left: the final model trains at once.
    result = CliRunner().invoke(cli, tune_args(small, out, "0.01", *NO_CONV, "--resume", "--quiet"))
    assert result.exit_code == 0, result.output
    after = json.loads((out / "tune.json").read_text())
    assert [t for t in after["trials"] if t["state"] == "complete"] == before  # the same trials, kept
    assert after["chosen"]["trial"] == max(before, key=lambda t: t["score"])["number"]
    assert load_checkpoint(out / "checkpoint.pt")["tuning"]["chosen"] == after["chosen"]


def test_a_ctrl_c_that_lands_inside_the_storage_waits_for_its_write_and_stops_the_search_cleanly(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    optuna = pytest.importorskip("optuna")
    out = tmp_path / "run"
    real = optuna.storages.RDBStorage.set_trial_user_attr
    writes: list[str] = []  # each write once a trial had finished: "began", then "ended" unless it was cut

    def write_interrupted(self: Any, *args: Any, **kw: Any) -> None:
        if not any(t["state"] == "complete" for t in _trials(out)):
            return real(self, *args, **kw)
        if not writes:
            os.kill(os.getpid(), signal.SIGINT)  # the Ctrl-C arrives as the storage is written
        writes.append("began")
        real(self, *args, **kw)
        writes.append("ended")

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_user_attr", write_interrupted)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's Ctrl-C, whatever the runner's
    try:
        result = CliRunner().invoke(cli, tune_args(small, out, "5", *NO_CONV))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.exit_code == 130, (writes, result.output)
    assert writes[:2] == ["began", "ended"], writes  # the write the signal landed in was not cut
    assert "search interrupted: 1 finished trial(s) kept" in result.output and "Traceback" not in result.output
    assert [t["state"] for t in _trials(out)] == ["complete", "fail"] and not (out / "checkpoint.pt").exists()


def test_a_ctrl_c_during_the_defaults_runs_them_first_on_resume(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "rnnedge.cli.main", *tune_args(small, out, "5", *NO_CONV)]
    _interrupt(command, lambda: _started(out, 0))  # the defaults cut off; the other cell's still waits its turn
    assert [t["state"] for t in _trials(out)] == ["fail", "waiting"]
    defaults = _trials(out)[0]["params"]

    # No time is left, but a search must have a result: the first trial of the resumed search runs to its end.
    result = CliRunner().invoke(cli, tune_args(small, out, "0.01", *NO_CONV, "--resume", "--quiet"))
    assert result.exit_code == 0, result.output
    after = json.loads((out / "tune.json").read_text())
    ran = [t for t in after["trials"] if t["state"] == "complete"]
    assert [t["params"] for t in ran] == [defaults], after["trials"]  # the defaults, not the other cell
    assert "it runs to its end anyway, since a search needs one finished trial" in (out / "tune.log").read_text()
    assert after["chosen"]["params"] == defaults
    assert [t["state"] for t in after["trials"]] == ["fail", "fail", "complete", "waiting"]  # the other cell next


def test_tune_without_optuna_names_the_extra(small: Path, tmp_path: Path) -> None:
    code = "import sys; sys.modules['optuna'] = None; from rnnedge.cli.main import cli; cli()"
    args = tune_args(small, tmp_path / "run", "1")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "pip install 'rnnedge[tune]'" in done.stderr and "without --tune" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing written
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    plain = subprocess.run(  # the plain path needs no Optuna
        [sys.executable, "-c", code, *args[:-2], "--epochs", "1", "--hidden", "4", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert plain.returncode == 0, plain.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--valid", "VALID"], "give no --valid or --valid-fraction"),
        (["--valid-fraction", "0.3"], "give no --valid or --valid-fraction"),
        (["--causal", "--bidirectional"], "--causal asks for a streamable model"),
        (["--causal", "--conv", "8"], "--causal asks for a streamable model"),
    ],
)
def test_tune_refuses_options_it_cannot_honour(small: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    extra = [str(small) if e == "VALID" else e for e in extra]
    result = CliRunner().invoke(cli, tune_args(small, tmp_path / "run", "1", *extra))
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "run").exists()


def test_resume_of_a_folder_without_a_search_is_refused(small: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, tune_args(small, tmp_path / "empty", "1", "--resume"))
    assert result.exit_code == 1 and "holds no checkpoint.pt or tune.db" in result.output


def test_a_final_model_that_misses_its_cv_accuracy_trains_again_before_the_test_is_looked_at(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rnnedge.training.train_sequences as train_sequences
    import rnnedge.training.tune as tune

    # A floor above 1 no model reaches: every seed misses it, as a model left on a plateau at chance does.
    monkeypatch.setattr(tune, "FIT_SLACK", -1.5)
    tested: list[int] = []  # the sizes of the sets evaluated: the test file's 150 cases once, at the very end
    real = train_sequences.evaluate

    def spy(model: Any, x: Any, *rest: Any, **kw: Any) -> Any:
        tested.append(len(x))
        return real(model, x, *rest, **kw)

    monkeypatch.setattr(train_sequences, "evaluate", spy)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, tune_args(small, out, "0.1", *CHEAP, "--quiet"))
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    log = (out / "tune.log").read_text()
    assert log.count("training it again with seed") == 2 and "after 3 seeds the final model" in log
    summary = json.loads((out / "tune.json").read_text())
    assert [a["seed"] for a in summary["final_attempts"]] == [0, 1]
    assert all(0 <= a["train_accuracy"] <= 1 for a in summary["final_attempts"])
    assert metrics["final_seed"] == 2 and metrics["final_fit_ok"] is False
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["train_config"]["seed"] == 2 and ckpt["tuning"]["final_attempts"] == summary["final_attempts"]
    assert ckpt["metrics"]["train_accuracy"] == metrics["train_accuracy"]
    assert tested.count(150) == 1 and tested[-1] == 150  # the test split: once, for the model kept
    assert tested.count(36) == 3  # each seed's fit on the whole training file


def test_jobs_run_trials_at_once_in_worker_processes(small: Path, tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    out = tmp_path / "run"
    args = CHEAP[:-2]  # without --jobs 1
    result = CliRunner().invoke(cli, tune_args(small, out, "0.5", *args, "--jobs", "2", "--quiet"))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tune.json").read_text())
    assert summary["jobs"] == 2 and summary["chosen"] is not None
    study = optuna.load_study(study_name="rnnedge-tune", storage=f"sqlite:///{out / 'tune.db'}")
    spans = [(t.datetime_start, t.datetime_complete) for t in study.trials if t.datetime_complete is not None]
    overlapping = [(a, b) for a in spans for b in spans if a is not b and a[0] < b[0] < a[1]]
    assert overlapping, spans  # a trial started while another was running
    assert not [t for t in study.trials if t.state.name == "RUNNING"]  # every worker ended its trial


def test_a_terminal_ctrl_c_stops_the_command_and_its_worker_processes(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [*CHEAP[:-2], "--jobs", "2", "--conv", "0"]  # without --jobs 1
    command = [sys.executable, "-m", "rnnedge.cli.main", *tune_args(small, out, "5", *args)]
    _interrupt(command, lambda: _started(out, 1), group=True)  # both processes in a trial
    states = [t["state"] for t in _trials(out)]
    assert "running" not in states and "fail" in states, states  # each process ended its trial under way
    assert not (out / "checkpoint.pt").exists()


def test_two_processes_asking_at_once_never_take_the_same_queued_candidate(tmp_path: Path) -> None:
    import threading

    from rnnedge.training.tune import study_storage

    optuna = pytest.importorskip("optuna")

    def ask(study: Any, together: threading.Barrier, asked: list[int]) -> None:
        together.wait()
        asked.append(study.ask().number)

    taken_twice = 0
    for i in range(20):  # plain sqlite3 storages took the one queued candidate twice in about half of such tries
        path = tmp_path / f"{i}.db"
        optuna.create_study(study_name="s", storage=study_storage(path)).enqueue_trial({"x": 1.0})
        studies = [optuna.load_study(study_name="s", storage=study_storage(path)) for _ in range(2)]
        asked: list[int] = []
        together = threading.Barrier(2)
        threads = [threading.Thread(target=ask, args=(study, together, asked)) for study in studies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(asked) == 2, asked
        taken_twice += asked[0] == asked[1]
    assert taken_twice == 0


def test_without_threads_each_trial_and_the_final_model_train_on_one_torch_thread(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import rnnedge.training.train_sequences as train_sequences
    import rnnedge.training.tune as tune

    seen: list[tuple[str, int]] = []  # (what trained, torch's threads as it began)
    real_fold, real_run = tune.fit_fold, train_sequences.run_training

    def fold(*args: Any, **kw: Any) -> Any:
        seen.append(("fold", torch.get_num_threads()))
        return real_fold(*args, **kw)

    def final(*args: Any, **kw: Any) -> Any:
        seen.append(("final", torch.get_num_threads()))
        return real_run(*args, **kw)

    monkeypatch.setattr(tune, "fit_fold", fold)
    monkeypatch.setattr(train_sequences, "run_training", final)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)  # torch's own default on a machine of two cores or more
    try:
        args = [*CHEAP[: CHEAP.index("--threads")], "--jobs", "1"]  # no --threads
        result = CliRunner().invoke(cli, tune_args(small, tmp_path / "run", "0.05", *args, "--quiet"))
    finally:
        torch.set_num_threads(saved)
    assert result.exit_code == 0, result.output
    assert {kind for kind, _ in seen} == {"fold", "final"} and all(threads == 1 for _, threads in seen), seen


def test_the_first_fold_hears_every_epoch_and_may_stop_the_fold(small: Path) -> None:
    from rnnedge.data.sequences import read_sequences
    from rnnedge.training.config import SequenceClassifierConfig, SequenceTrainConfig
    from rnnedge.training.train_sequences import SequenceData
    from rnnedge.training.tune import fit_fold

    cases = read_sequences(small)
    data = SequenceData(cases.subset(list(range(0, 36, 2))), cases.subset(list(range(1, 36, 2))), None, {})
    model = SequenceClassifierConfig(input_size=1, num_classes=2, hidden_size=4)
    heard: list[tuple[int, float, int]] = []
    result = fit_fold(model, SequenceTrainConfig(epochs=5, patience=0), data, lambda e, s, n: heard.append((e, s, n)))
    assert [e for e, _, _ in heard] == [0, 1, 2, 3] and result["epochs"] == 5  # not after the last: the fold is done
    assert all(0 <= s <= 1 for _, s, _ in heard)  # the accuracy the fold would keep
    assert [n for _, _, n in heard] == [5, 10, 15, 20]  # the optimizer steps so far: 18 cases in batches of 4
    assert (result["epoch"], result["step"]) == (5, 25)  # the last epoch, with patience 0

    class Stop(Exception):
        pass

    def stop_at_2(epoch: int, score: float, steps: int) -> None:
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        fit_fold(model, SequenceTrainConfig(epochs=5, patience=0), data, stop_at_2)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--jobs", "2"], "--jobs sets how many --tune trials run at once"), (["--tune", "1", "--jobs", "0"], "--jobs")],
)
def test_jobs_needs_tune_and_a_count_of_at_least_one(
    small: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    base = ["train", "classifier", "--train", str(small), "--test", str(gunpoint("test")), "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "r").exists()
