"""The serve clients of the README and docs/ run as written against a real `rnnedge serve` on a loopback port."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from doc_blocks import ROOT, blocks, pages
from serve_harness import running_server

CLIENTS = [
    b for page in [ROOT / "README.md", *pages()] for b in blocks(page) if b.language == "python" and "ws://" in b.code
]


def test_the_readme_and_docs_clients_run_against_a_real_server(
    tiny_onnx: Path, tiny_lm_onnx: Path, tmp_path: Path
) -> None:
    assert {b.page.name for b in CLIENTS} >= {"README.md", "serving.md"}, (
        "the README and the serving guide show a client"
    )
    models = [tmp_path / "ptb-small.onnx", tmp_path / "digits.onnx"]  # the names the clients open
    shutil.copy(tiny_lm_onnx, models[0])
    shutil.copy(tiny_onnx, models[1])
    with running_server(models) as server:
        for block in CLIENTS:
            code = re.sub(r"ws://127\.0\.0\.1:\d+", server.url, block.code)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"{block.where}\n{block.code}\n{done.stderr[-3000:]}"
            assert "[[" in done.stdout  # the top-k it prints
