"""Benchmark results written by benchmarks/results.py become pages through docs/gen_benchmarks.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


results = _module(ROOT / "benchmarks" / "results.py")
gen = _module(ROOT / "docs" / "gen_benchmarks.py")


def test_results_round_trip_into_a_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not a real model, only bytes to hash")
    monkeypatch.setattr(sys, "argv", [str(ROOT / "benchmarks" / "stream_batch.py"), str(model), "--json"])
    run = results.Results("stream_batch", "Many streams: one call.\n\nMore text.", models=[model])
    table = run.table("N streams", ["N", "step (µs)", "tokens/s", "gain"])
    table.add(64, 6325.4, float("nan"), 4.93)
    with pytest.raises(ValueError, match="3 cells for 4 columns"):
        table.add(1, 2, 3)
    written = run.write(tmp_path / "out.json")
    record = json.loads(written.read_text(encoding="utf-8"))
    assert record["command"].startswith("python benchmarks/stream_batch.py ")
    assert record["models"][0]["size_bytes"] == model.stat().st_size
    assert record["tables"][0]["rows"] == [[64, 6325.4, None, 4.93]]  # NaN is an empty cell, numbers stay numbers
    assert record["machine"]["logical_cpus"] >= 1 and record["date"].endswith("+00:00")
    page = gen.render(record)
    assert page.startswith("# Many streams: one call\n")
    assert "| 64 | 6,325 |  | 4.93 |" in page
    assert "python benchmarks/stream_batch.py" in page
    assert "| [Many streams: one call](stream_batch.md) |" in gen.index([record])
    assert run.write(None) is None


def test_every_stored_result_renders() -> None:
    records = gen.load_all()
    assert records, "docs/benchmarks/data holds the results the benchmark pages show"
    for record in records:
        page = gen.render(record)
        assert record["command"] in page and record["date"] in page


def test_a_record_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 2"):
        gen.render({"format": 2, "benchmark": "x"})
