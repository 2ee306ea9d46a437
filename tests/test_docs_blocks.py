"""Every python and bash block of the guides in docs/ runs as written (tests/doc_blocks.py says how)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from doc_blocks import DOCS, ROOT, RUNNABLE, blocks, pages, prepare_folder, run_page, section

RUN = [page for page in pages() if any(b.runs_here for b in blocks(page))]


def test_the_guides_have_runnable_blocks() -> None:
    names = {page.name for page in RUN}
    assert {"python.md", "own-sequences.md", "language-models.md"} <= names


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_a_block_not_run_says_why(page: Path) -> None:
    for block in blocks(page):
        if block.language in RUNNABLE and block.not_run is not None:
            assert len(block.not_run) >= 10, f"{block.where}: say why it is not run"


@pytest.mark.parametrize("page", RUN, ids=lambda p: str(p.relative_to(DOCS)))
def test_a_guide_runs_as_written(
    page: Path, tiny_onnx: Path, tiny_lm_onnx: Path, ptb_data: Path, data_dir: Path, tmp_path: Path
) -> None:
    folder = prepare_folder(tmp_path, classifier=tiny_onnx, language_model=tiny_lm_onnx, ptb=ptb_data)
    assert run_page(page, folder, data_dir) >= 1


def test_a_bash_block_says_what_to_set_when_rnnedge_data_is_unset() -> None:
    """Unset, ``$RNNEDGE_DATA/uea/...`` reads ``/uea/...: no such file``; ``${RNNEDGE_DATA:?...}`` says what to do."""
    unguarded = []
    for page in [ROOT / "README.md", *pages()]:
        for block in blocks(page):
            first = re.search(r"\$\{?RNNEDGE_DATA\W{0,2}", block.code) if block.language == "bash" else None
            if first is not None and not first.group().startswith("${RNNEDGE_DATA:?"):
                unguarded.append(f"{block.where}: {first.group()}")
    assert not unguarded, "first use of RNNEDGE_DATA without ${RNNEDGE_DATA:?what to set}: " + ", ".join(unguarded)


def test_the_data_free_start_needs_no_data(tmp_path: Path) -> None:
    """What the README offers offline: no $RNNEDGE_DATA, an empty cache, and no download is tried."""
    only = section(DOCS / "own-sequences.md", "No data at hand: sequences made with numpy")
    assert run_page(DOCS / "own-sequences.md", tmp_path, None, only) == 3
    assert (tmp_path / "waves.onnx").is_file() and (tmp_path / "waves.int8.onnx").is_file()
    assert not (tmp_path / "empty-cache" / "rnnedge").exists()
