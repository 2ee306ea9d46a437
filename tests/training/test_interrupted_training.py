"""Real training runs (the ``rnnedge`` command in a subprocess) killed with SIGKILL, then resumed.

For the row classifier and for the PTB language model, each on a budget of tens of steps on real
data that crosses an epoch boundary, the run is killed:

* in the middle of an epoch, as soon as a checkpoint taken mid-epoch after the first epoch is on
  disk (the run goes on training past it until the kill lands);
* in the middle of writing a checkpoint: a driver script wraps ``torch.save``, which
  ``save_checkpoint`` calls inside ``atomic_output``'s context, so that the second save writes half
  its bytes to the temporary file, leaves a marker and sleeps until the kill. rnnedge's own atomic
  write is what is under test.

After each kill the checkpoint on disk loads and is one the run completed, no temporary file passes
for a checkpoint, and ``--resume`` finishes the run.

Tolerance: none. On the CPU with one torch thread a resumed run ends bit-identical to an
uninterrupted one with the same seed: the final checkpoint (weights, optimizer state, carried LSTM
state, RNG state, metrics) is equal tensor for tensor, and metrics.jsonl record for record, apart
from wall-clock fields. Every random choice (shuffle, shift, dropout) derives from the seed and the
step or is restored from the checkpoint, and one thread fixes the order of every floating-point sum.

The uninterrupted and resumed runs go through the same CLI in-process (click's ``CliRunner``, no
second torch import); only the runs to be killed need a process of their own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from rnnedge.cli.main import cli
from rnnedge.data.atomic import atomic_output
from rnnedge.errors import CheckpointError
from rnnedge.export.batch import find_checkpoints
from rnnedge.training.checkpoint import load_checkpoint

# Fields that measure wall-clock time and so differ between any two runs.
WALL_CLOCK = frozenset({"time", "seconds", "train_seconds", "words_per_sec", "epoch_seconds"})
WAIT_S = 180.0  # for a run to reach the point of the kill, on a loaded 2-core machine


@dataclass(frozen=True)
class Budget:
    """One ``rnnedge train`` command on a small budget, and the checkpoints it writes."""

    kind: str  # the checkpoint's
    name: str  # the run's, as train.log says it
    args: tuple[str, ...]  # every option but --out and --resume
    total_steps: int
    first_save: int  # step of the run's first checkpoint

    def command(self, out: Path, *more: str) -> list[str]:
        return [*self.args, "--out", str(out), *more]


@pytest.fixture(scope="module", params=["mnist-lstm", "ptb"])
def budget(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Budget:
    if request.param == "mnist-lstm":
        data: Path = request.getfixturevalue("data_dir")
        # 55 steps an epoch (55,000 training images in batches of 1,000), two epochs.
        args = ["train", "mnist-lstm", "--data", str(data), "--epochs", "2", "--batch-size", "1000"]
        args += ["--hidden-size", "8", "--checkpoint-every", "10", "--seed", "3", "--quiet"]
        return Budget("sequence_classifier", "mnist-lstm", tuple(args), total_steps=110, first_save=10)
    ptb: Path = request.getfixturevalue("ptb_data")
    # The small configuration on the first 300 lines of PTB (16 windows of 20 x 20 words an epoch,
    # 1,618 word types): the full corpus would spend most of the budget on its 10,000-word softmax.
    sliced = tmp_path_factory.mktemp("ptb-slice")
    (sliced / "ptb").mkdir()
    for split, lines in (("train", 300), ("valid", 20), ("test", 20)):
        text = (ptb / "ptb" / f"ptb.{split}.txt").read_text().splitlines(keepends=True)[:lines]
        (sliced / "ptb" / f"ptb.{split}.txt").write_text("".join(text))
    args = ["train", "ptb", "--config", "small", "--data", str(sliced), "--custom", "--epochs", "3"]
    args += ["--max-steps", "40", "--checkpoint-every", "5", "--seed", "3", "--threads", "1", "--quiet"]
    return Budget("language_model", "ptb", tuple(args), total_steps=40, first_save=5)


def _train_in_process(args: list[str]) -> dict[str, Any]:
    """Run ``rnnedge ARGS`` here on one torch thread; return the final metrics it prints."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # what OMP_NUM_THREADS=1 gives the killed runs
    try:
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    finally:
        torch.set_num_threads(saved)
    assert result.exit_code == 0, result.output
    metrics: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return metrics


@pytest.fixture(scope="module")
def uninterrupted(budget: Budget, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp(f"{budget.kind}-uninterrupted")
    return out, _train_in_process(budget.command(out))


@dataclass
class _Process:
    """A started run and the file its stderr goes to."""

    popen: subprocess.Popen[bytes]
    stderr: Path

    def wait_until(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not ready():
            if self.popen.poll() is not None:
                tail = self.stderr.read_text(errors="replace")[-3000:]
                pytest.fail(f"the run ended with status {self.popen.returncode} before a {what}:\n{tail}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {WAIT_S:.0f} s")
            time.sleep(0.02)

    def sigkill(self) -> None:
        os.kill(self.popen.pid, signal.SIGKILL)
        assert self.popen.wait(timeout=60) == -signal.SIGKILL, "the run ended before the kill landed"


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[list[str]], _Process]]:
    """Start ``python ARGS`` on one thread, stderr to a file; kill what is still running at teardown."""
    started: list[_Process] = []

    def start(args: list[str]) -> _Process:
        stderr = tmp_path / f"stderr-{len(started)}.txt"
        with open(stderr, "wb") as err:
            popen = subprocess.Popen(
                [sys.executable, *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell ignores it
            )
        started.append(_Process(popen, stderr))
        return started[-1]

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()


def _temporary_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _without_wall_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    return value


def _assert_identical(a: Any, b: Any, where: str = "checkpoint") -> None:
    """Equal tensor for tensor (dtype, shape and every bit), value for value."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, sorted(a), sorted(b))
        for key in a:
            _assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def _assert_same_as_uninterrupted(
    uninterrupted: tuple[Path, dict[str, Any]], run: Path, metrics: dict[str, Any], kind: str
) -> None:
    whole, whole_metrics = uninterrupted
    assert _without_wall_clock(metrics) == _without_wall_clock(whole_metrics)
    a, b = (load_checkpoint(folder / "checkpoint.pt", kind) for folder in (whole, run))
    assert a["progress"]["done"] and b["progress"]["done"]
    _assert_identical(_without_wall_clock(a), _without_wall_clock(b))

    def records(folder: Path) -> list[dict[str, Any]]:
        return [_without_wall_clock(json.loads(line)) for line in (folder / "metrics.jsonl").read_text().splitlines()]

    assert records(run) == records(whole)


class _CheckpointWatch:
    """The progress of each new checkpoint a running trainer writes (each is complete: written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: tuple[int, int] | None = None
        self.progress: dict[str, Any] = {}

    def new_mid_epoch_after_first_epoch(self) -> bool:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        if (stat.st_ino, stat.st_mtime_ns) == self.seen:
            return False
        self.seen = (stat.st_ino, stat.st_mtime_ns)
        self.progress = load_checkpoint(self.path)["progress"]
        return self.progress["epoch"] >= 1 and self.progress["step_in_epoch"] > 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_ends_as_an_uninterrupted_run(
    budget: Budget, uninterrupted: tuple[Path, dict[str, Any]], spawn, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    proc = spawn(["-m", "rnnedge.cli.main", *budget.command(run)])
    watch = _CheckpointWatch(run / "checkpoint.pt")
    proc.wait_until("checkpoint taken mid-epoch after the first epoch", watch.new_mid_epoch_after_first_epoch)
    proc.sigkill()

    progress = load_checkpoint(run / "checkpoint.pt", budget.kind)["progress"]
    assert watch.progress["step"] <= progress["step"] < budget.total_steps and not progress["done"]
    metrics = _train_in_process(budget.command(run, "--resume"))
    assert f"resumed {budget.name}" in (run / "train.log").read_text()
    _assert_same_as_uninterrupted(uninterrupted, run, metrics, budget.kind)
    assert _temporary_files(run) == []


@pytest.mark.slow
def test_ctrl_c_checkpoints_exits_130_and_resume_ends_as_an_uninterrupted_run(
    budget: Budget, uninterrupted: tuple[Path, dict[str, Any]], spawn, tmp_path: Path
) -> None:
    """A real SIGINT from outside: status 130 (not click's 'Aborted!' and 1), a checkpoint at the interrupt."""
    run = tmp_path / "run"
    proc = spawn(["-m", "rnnedge.cli.main", *budget.command(run)])
    proc.wait_until("first checkpoint", (run / "checkpoint.pt").exists)
    os.kill(proc.popen.pid, signal.SIGINT)
    assert proc.popen.wait(timeout=WAIT_S) == 130
    stderr = proc.stderr.read_text()
    assert "Aborted!" not in stderr and "Traceback" not in stderr, stderr
    found = re.search(r"interrupted at step (\d+) of (\d+)", stderr)
    assert found and int(found.group(2)) == budget.total_steps and "--resume" in stderr, stderr
    progress = load_checkpoint(run / "checkpoint.pt", budget.kind)["progress"]
    assert progress["step"] == int(found.group(1)) >= budget.first_save and not progress["done"]

    metrics = _train_in_process(budget.command(run, "--resume"))
    _assert_same_as_uninterrupted(uninterrupted, run, metrics, budget.kind)
    assert _temporary_files(run) == []


_HALF_WRITE_DRIVER = '''
"""``rnnedge ARGS``, except that the second torch.save writes half its bytes and then waits to be killed."""
import io
import os
import sys
import time
from pathlib import Path

import torch

marker = Path(sys.argv[1])
real_save = torch.save
saves = 0


def save(obj, f, *args, **kwargs):
    global saves
    saves += 1
    if saves < 2:
        return real_save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    with open(f, "wb") as out:
        out.write(data[: len(data) // 2])
        out.flush()
        os.fsync(out.fileno())
    marker.with_suffix(".part").write_text(os.fspath(f))
    os.replace(marker.with_suffix(".part"), marker)
    time.sleep(3600)


torch.save = save
from rnnedge.cli.main import cli  # noqa: E402

cli(sys.argv[2:], prog_name="rnnedge")
'''


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(
    budget: Budget, uninterrupted: tuple[Path, dict[str, Any]], spawn, tmp_path: Path
) -> None:
    driver, marker, run = tmp_path / "driver.py", tmp_path / "writing", tmp_path / "run"
    driver.write_text(textwrap.dedent(_HALF_WRITE_DRIVER))
    proc = spawn([str(driver), str(marker), *budget.command(run)])
    proc.wait_until("second checkpoint half written", marker.exists)
    proc.sigkill()

    # The kill leaves the half-written temporary file beside the checkpoint...
    partial = Path(marker.read_text())
    assert partial.parent == run and partial.name.startswith(".checkpoint.pt.") and partial.suffix == ".tmp"
    assert _temporary_files(run) == [partial.name] and partial.stat().st_size > 0
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(partial)
    # ...which nothing takes for a checkpoint; checkpoint.pt is still the first, complete one.
    assert find_checkpoints([run]) == [(run / "checkpoint.pt").resolve()]
    progress = load_checkpoint(run / "checkpoint.pt", budget.kind)["progress"]
    assert progress["step"] == budget.first_save and not progress["done"]

    metrics = _train_in_process(budget.command(run, "--resume"))
    assert _temporary_files(run) == [], "the resumed run's first write clears the dead writer's temporary file"
    _assert_same_as_uninterrupted(uninterrupted, run, metrics, budget.kind)


def test_atomic_output_clears_only_the_temporary_files_of_dead_writers(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.pt"
    dead = tmp_path / ".checkpoint.pt.0123456789ab.tmp"  # what a writer killed mid-write leaves
    dead.write_bytes(b"half a checkpoint")
    others = [".other.pt.0123456789ab.tmp", "checkpoint.pt.tmp", ".checkpoint.pt.not-ours.tmp", ".checkpoint.pt"]
    for name in others:
        (tmp_path / name).write_bytes(b"not ours")
    with atomic_output(target) as first:
        assert not dead.exists()
        first.write_bytes(b"first")
        with atomic_output(target) as second:  # a second writer of the same file, alive meanwhile
            second.write_bytes(b"second")
        assert first.read_bytes() == b"first", "a live writer's temporary file must be left alone"
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "checkpoint.pt"])
