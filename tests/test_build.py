"""The Makefile and the install metadata as a user on a bare clone meets them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _data_folder_make_uses(repo: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("RNNEDGE_DATA", "MAKEFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        ["make", "-s", "-C", str(repo), "--eval", 'show-data: ; @echo "[$$RNNEDGE_DATA]"', "show-data"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_clone_without_shared_data_leaves_the_data_folder_to_the_cache(tmp_path: Path) -> None:
    repo = tmp_path / "clone"
    repo.mkdir()
    shutil.copy(ROOT / "Makefile", repo / "Makefile")
    assert _data_folder_make_uses(repo) == "[]"  # before: ../shared/data, which does not exist here
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert _data_folder_make_uses(repo) == f"[{tmp_path / 'shared' / 'data'}]"


def test_the_train_extra_takes_a_range_of_torch_and_the_exact_pin_is_the_machines() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    torch = [r for r in extras["train"] if r.startswith("torch")]
    assert torch and "==" not in torch[0], torch
    assert "torch==2.13.0" in (ROOT / "constraints" / "cpu-torch.txt").read_text()
    assert "constraints/cpu-torch.txt" in (ROOT / "Makefile").read_text()
