"""The README: at most 300 lines, its links lead somewhere, and its code blocks run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from doc_blocks import ROOT, blocks, prepare_folder, run_page

README = ROOT / "README.md"


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def _slug(heading: str) -> str:
    """A heading's anchor as MkDocs and GitHub write it (lower case, punctuation dropped, spaces as -)."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def test_every_relative_link_of_the_readme_reaches_a_file_and_its_anchor() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 10
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        if path.startswith("docs/benchmarks/") and path.endswith(".md") and not target.exists():
            pytest.fail(f"{link}: generated pages are linked through docs/benchmarks/index.md only")
        assert target.exists(), f"README links to {link}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), re.M)
            assert anchor in {_slug(h) for h in headings}, f"README links to {link}: no such heading in {path}"


def test_the_readme_has_runnable_blocks() -> None:
    found = blocks(README)
    assert sum(b.runs_here for b in found) >= 3
    assert any("ws://" in b.code for b in found), "the README shows a client of rnnedge serve"


@pytest.mark.slow
def test_the_readme_blocks_run_as_written(
    tiny_onnx: Path, tiny_lm_onnx: Path, ptb_data: Path, data_dir: Path, tmp_path: Path
) -> None:
    """The five-minute tour, in a fresh folder: train briefly, export, classify, stream in Python."""
    folder = prepare_folder(tmp_path, classifier=tiny_onnx, language_model=tiny_lm_onnx, ptb=ptb_data)
    assert run_page(README, folder, data_dir) >= 3
    assert (folder / "digits.onnx").is_file()
