"""docs/bad_input.md stays true to the tests: every row names tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CATALOGUE = TESTS.parent / "docs" / "bad_input.md"


def _rows() -> list[list[str]]:
    lines = CATALOGUE.read_text(encoding="utf-8").splitlines()
    return [line.strip("|").split(" | ") for line in lines if re.match(r"\| \d+ \|", line)]


def test_every_row_names_tests_that_exist() -> None:
    rows = _rows()
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1)), "rows are numbered 1, 2, ... in order"
    assert len(rows) >= 45
    for row in rows:
        assert len(row) == 7, f"row {row[0]} has {len(row)} cells, expected 7"
        refs = []
        current = None
        for token in re.findall(r"`([^`]+)`", row[-1]):
            if "::" not in token:
                continue  # a further [parameter] of the test before it
            path, _, name = token.partition("::")
            current = path or current
            refs.append((current, name.split("[")[0]))
        assert refs, f"row {row[0]} names no test"
        for path, name in refs:
            source = TESTS / str(path)
            assert source.is_file(), f"row {row[0]}: {path} does not exist"
            assert f"def {name}(" in source.read_text(encoding="utf-8"), f"row {row[0]}: no {name} in {path}"
