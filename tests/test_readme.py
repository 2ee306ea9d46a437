"""Every Python block of the README runs as written, in a folder holding the files it names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.M | re.S)
# Blocks that talk to a running `rnnedge serve` run against a real server in tests/serve/test_serve_readme.py.
LOCAL = [b for b in BLOCKS if "ws://" not in b]


def test_the_readme_has_python_blocks() -> None:
    assert len(LOCAL) >= 4


@pytest.fixture(scope="module")
def readme_folder(
    tiny_onnx: Path, tiny_lm_onnx: Path, ptb_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The files the README's blocks name: tiny real models under the README's file names, real PTB text."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copy(tiny_onnx, folder / "mnist-lstm.onnx")
    shutil.copy(tiny_lm_onnx, folder / "ptb-small.onnx")
    lines = (ptb_data / "ptb" / "ptb.test.txt").read_text(encoding="utf-8").splitlines()[:200]
    (folder / "ptb.test.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("index", range(len(LOCAL)))
def test_a_python_block_runs_as_written(index: int, readme_folder: Path, data_dir: Path) -> None:
    env = {**os.environ, "RNNEDGE_DATA": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-c", LOCAL[index]], cwd=readme_folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"README block {index + 1}:\n{LOCAL[index]}\n{done.stderr[-3000:]}"
