"""The README's serve client runs as written against a real `rnnedge serve` on a free loopback port."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from serve_harness import running_server

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = [
    b for b in re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S) if "ws://" in b
]


def test_the_readme_client_runs_against_a_real_server(tiny_lm_onnx: Path, tmp_path: Path) -> None:
    assert BLOCKS, "the README shows a client of rnnedge serve"
    model = tmp_path / "ptb-small.onnx"  # the name the README's client opens
    shutil.copy(tiny_lm_onnx, model)
    with running_server([model]) as server:
        for block in BLOCKS:
            code = re.sub(r"ws://127\.0\.0\.1:\d+", server.url, block)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"{block}\n{done.stderr[-3000:]}"
            assert "[[" in done.stdout  # the top-k it prints
