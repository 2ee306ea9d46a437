"""The code blocks of the README and of docs/*.md, and how the tests run them as written.

A page's ``python`` and ``bash`` blocks run in order in one folder, as a reader following the page
would run them; a block that talks to ``rnnedge serve`` (``ws://``) runs against a real server in
tests/serve/test_serve_readme.py, and ``js`` blocks run in Node (js/test/readme.test.js). A block
preceded by a line ``<!-- not run: REASON -->`` is not run (a training run of an hour, a server that
runs until stopped); ``text`` blocks are synopses with placeholders.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUNNABLE = ("python", "bash", "js")
_FENCE = re.compile(r"^( *)```(\w*)\s*$")
_NOT_RUN = re.compile(r"^\s*<!-- not run: (.+?) -->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str | None  # the reason given in the marker above the block

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs_here(self) -> bool:
        """Run by run_page (python and bash blocks that need no server)."""
        return self.not_run is None and self.language in ("python", "bash") and "ws://" not in self.code


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page, with its language and whether it is marked not to run."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, language = opening.groups()
        end = i + 1
        while end < len(lines) and lines[end].rstrip() != f"{indent}```":
            end += 1
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _NOT_RUN.match(previous)
        code = textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"
        found.append(Block(page, i + 1, language, code, marker.group(1) if marker else None))
        i = end + 1
    return found


def pages() -> list[Path]:
    """The guides: every Markdown page under docs/ (the generated benchmark pages are not files)."""
    return sorted(DOCS.rglob("*.md"))


def prepare_folder(folder: Path, *, classifier: Path, language_model: Path, ptb: Path) -> Path:
    """The files the pages name: tiny real models under the pages' file names, real PTB text."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(classifier, folder / "mnist-lstm.onnx")
    shutil.copy(language_model, folder / "ptb-small.onnx")
    lines = (ptb / "ptb" / "ptb.test.txt").read_text(encoding="utf-8").splitlines()[:200]
    (folder / "ptb.test.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def section(page: Path, heading: str) -> list[Block]:
    """The blocks under the heading ``## heading`` of a page, up to the next heading of that level or above."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"## {heading}") + 1
    end = next((i for i in range(start, len(lines)) if re.match(r"#{1,2} ", lines[i])), len(lines))
    return [b for b in blocks(page) if start < b.line <= end]


def run_page(page: Path, folder: Path, data: Path | None, only: list[Block] | None = None) -> int:
    """Run the page's python and bash blocks (or ``only`` these) in order in ``folder``; fail naming the block.

    ``data`` is ``$RNNEDGE_DATA``; ``None``: no data at all (unset, and an empty cache). Returns how many ran.
    """
    bin_dir = str(Path(sys.executable).parent)  # the `rnnedge` command installed beside this Python
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("RNNEDGE_DATA", None)
    if data is None:
        env["XDG_CACHE_HOME"] = str(folder / "empty-cache")
    else:
        env["RNNEDGE_DATA"] = str(data)
    ran = 0
    for block in blocks(page) if only is None else only:
        if not block.runs_here:
            continue
        if block.language == "python":
            command = [sys.executable, "-c", block.code]
        else:
            command = ["bash", "-euo", "pipefail", "-c", block.code]
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{block.where} ({block.language}):\n{block.code}\n{done.stderr[-3000:]}"
        ran += 1
    return ran
