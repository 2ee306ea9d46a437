"""Every python and bash block of the guides in docs/ runs as written (tests/doc_blocks.py says how)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import DOCS, RUNNABLE, blocks, pages, prepare_folder, run_page

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
