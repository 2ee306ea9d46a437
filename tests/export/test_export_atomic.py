"""Export killed before its file is validated: the earlier file survives, and the next export clears the debris.

A validation failure is covered beside the exporters (``test_a_wrong_graph_is_refused_and_nothing_written``);
here the ``rnnedge export`` command runs in a subprocess and is SIGKILLed while the complete but
unvalidated graph sits in its temporary file, the moment a kill can do the most harm.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rnnedge.export.batch import find_checkpoints
from rnnedge.export.exporter import export_checkpoint
from rnnedge.runtime import load

_HANG_IN_VALIDATION = '''
"""``rnnedge ARGS``, except that export validation writes a marker and waits to be killed."""
import os
import sys
import time
from pathlib import Path

from rnnedge.export import exporter

marker = Path(sys.argv[1])


def validate_then_hang(path, reference, **options):
    marker.with_suffix(".part").write_text(os.fspath(path))
    os.replace(marker.with_suffix(".part"), marker)
    time.sleep(3600)


exporter.validate_export = validate_then_hang
from rnnedge.cli.main import cli  # noqa: E402

cli(sys.argv[2:], prog_name="rnnedge")
'''


def test_export_killed_during_validation_leaves_the_earlier_file(
    tiny_checkpoint: Path, tiny_onnx: Path, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    target = dist / "model.onnx"
    target.write_bytes(b"earlier good file")
    driver, marker, stderr = tmp_path / "driver.py", tmp_path / "validating", tmp_path / "stderr.txt"
    driver.write_text(textwrap.dedent(_HANG_IN_VALIDATION))
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(driver), str(marker), "export", str(tiny_checkpoint), "-o", str(target), "--force"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, f"export ended with status {proc.returncode}: {stderr.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "export never reached validation"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    unvalidated = Path(marker.read_text())
    assert unvalidated.parent == dist and unvalidated.name.startswith(".model.onnx.") and unvalidated.suffix == ".tmp"
    assert unvalidated.read_bytes() == tiny_onnx.read_bytes(), "killed after the whole graph was written"
    assert target.read_bytes() == b"earlier good file"
    assert sorted(p.name for p in dist.iterdir()) == sorted([unvalidated.name, "model.onnx"])
    assert find_checkpoints([dist]) == []

    result = export_checkpoint(tiny_checkpoint, target)
    assert result.path == target and target.read_bytes() == tiny_onnx.read_bytes()
    assert [p.name for p in dist.iterdir()] == ["model.onnx"], "the next export removes the dead export's file"
    load(target).close()


def test_export_interrupted_in_process_leaves_nothing(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnedge.export import exporter

    def interrupted(path: Path, reference: object, **options: object) -> None:
        assert path.is_file() and path.stat().st_size > 0
        raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "validate_export", interrupted)
    target = tmp_path / "model.onnx"
    target.write_bytes(b"earlier good file")
    with pytest.raises(KeyboardInterrupt):
        export_checkpoint(tiny_checkpoint, target)
    assert target.read_bytes() == b"earlier good file"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
