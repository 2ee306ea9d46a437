"""docs/serving.md's protocol tables are the protocol: every op with its fields, every error and close code."""

from __future__ import annotations

import re
from pathlib import Path

import serve_harness  # noqa: F401  (skips this module without the serve extra)

from rnnedge.serve.protocol import CLOSE_CODES, ERROR_CODES, REQUEST_FIELDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def _rows(header: str) -> list[list[str]]:
    """The body rows of the table whose header row starts with ``| header |``."""
    lines = DOC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_ops_table_lists_every_op_with_its_fields() -> None:
    documented = {}
    for op, fields, _reply in _rows("op"):
        names = re.findall(r"`(\w+)(\??)`", fields)
        documented[op.strip("`")] = {name: not optional for name, optional in names}
    assert documented == REQUEST_FIELDS


def test_the_error_and_close_tables_are_the_servers_codes() -> None:
    assert {code.strip("`"): text for code, text in _rows("error")} == ERROR_CODES
    assert {int(code): text for code, text in _rows("close code")} == CLOSE_CODES
