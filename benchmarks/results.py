"""A benchmark's results as JSON: what ran, on which machine, when, and its tables.

    from results import Results, add_json_option

    add_json_option(parser)                        # --json [PATH]
    results = Results("stream_batch", __doc__, models=[args.model])
    table = results.table("Many streams", ["N", "batch step (µs)", "tokens/s"])
    table.add(64, 6325.0, 10119.0)
    results.write(args.json)                       # nothing without --json

``--json`` alone writes ``docs/benchmarks/data/NAME.json``, from which ``docs/gen_benchmarks.py`` makes
the benchmark's page at every ``make docs``: rerunning a benchmark with ``--json`` refreshes its page. The
machine, the command and the date live in the data, never in prose. Cells are numbers (kept as numbers:
the page rounds them), strings, or None for an empty cell.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "benchmarks" / "data"
DEFAULT = "<docs>"  # --json with no path: DATA / NAME.json
FORMAT = 1  # of the JSON below; docs/gen_benchmarks.py refuses another

Cell = float | int | str | None


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--json [PATH]``: write the results to PATH, or to docs/benchmarks/data/NAME.json without one."""
    parser.add_argument(
        "--json",
        nargs="?",
        const=DEFAULT,
        default=None,
        metavar="PATH",
        help="also write the results as JSON to PATH (alone: docs/benchmarks/data/NAME.json, for the docs' pages)",
    )


@dataclass
class Table:
    """One table of a benchmark: a title, column names, rows of cells and an optional note under it."""

    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""

    def add(self, *cells: Cell) -> None:
        """Append one row; it has one cell per column."""
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.title!r}: {len(cells)} cells for {len(self.columns)} columns {self.columns}")
        self.rows.append([_cell(c) for c in cells])


def _cell(value: Any) -> Cell:
    """A JSON-safe cell: numpy scalars become Python numbers, NaN and infinity an empty cell."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value
    number = float(value)
    if number.is_integer() and not isinstance(value, float) and abs(number) < 2**53:
        return int(number)
    return number if math.isfinite(number) else None


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on: CPU model, cores, memory, OS, and the versions that set the speed."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    memory = _meminfo_gib()
    if memory is not None:
        info["memory_gib"] = memory
    if hasattr(os, "getloadavg"):
        info["load_average_1min_at_start"] = round(os.getloadavg()[0], 2)
    for module in ("numpy", "onnxruntime", "torch"):
        if module in sys.modules:
            info[module] = getattr(sys.modules[module], "__version__", "?")
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


def _model(path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"file": path.name}
    if path.is_file():
        entry["size_bytes"] = path.stat().st_size
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entry


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran, as a user would type it from the repository root."""
    args = list(sys.argv if argv is None else argv)
    script = Path(args[0]).resolve()
    shown = str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else args[0]
    return shlex.join(["python", shown, *args[1:]])


class Results:
    """What one benchmark run measured, ready to be written as JSON (``write``)."""

    def __init__(self, name: str, doc: str | None = None, *, models: Sequence[str | os.PathLike[str]] = ()):
        self.name = name
        text = (doc or "").strip()
        self.title = text.splitlines()[0].strip() if text else name
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.command = command_line()
        self.models = [Path(m) for m in models]
        self.tables: list[Table] = []
        self.notes: list[str] = []
        self.machine = machine()

    def table(self, title: str, columns: Sequence[str], note: str = "") -> Table:
        """A new table, in the order the page shows them."""
        table = Table(title, list(columns), note=note)
        self.tables.append(table)
        return table

    def summaries(
        self, title: str, summaries: Mapping[str, Any], baseline: str | None, *, scale: float = 1e6, unit: str = "µs"
    ) -> Table:
        """A table of timing summaries (``rnnedge.bench.Summary``) with each one's ratio to ``baseline``."""
        columns = ["contender", f"median ({unit})", f"IQR ({unit})"]
        if baseline is not None:
            columns.append(f"× {baseline}")
        table = self.table(title, columns)
        for name, s in summaries.items():
            ratio = [s.median / summaries[baseline].median] if baseline is not None else []
            table.add(name, s.median * scale, s.iqr * scale, *ratio)
        return table

    def note(self, text: str) -> None:
        """A line of text shown under the tables (what the reader needs to read them, not a narrative)."""
        self.notes.append(text)

    def data(self) -> dict[str, Any]:
        finished = datetime.datetime.now(datetime.timezone.utc)
        return {
            "format": FORMAT,
            "benchmark": self.name,
            "title": self.title,
            "command": self.command,
            "date": self.started.isoformat(timespec="seconds"),
            "seconds": round((finished - self.started).total_seconds(), 1),
            "machine": self.machine,
            "models": [_model(m) for m in self.models],
            "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows, "note": t.note} for t in self.tables],
            "notes": self.notes,
        }

    def write(self, path: str | os.PathLike[str] | None) -> Path | None:
        """Write the JSON to ``path`` (``DEFAULT``: docs/benchmarks/data/NAME.json); nothing when None."""
        if path is None:
            return None
        target = DATA / f"{self.name}.json" if path == DEFAULT else Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(json.dumps(self.data(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        partial.replace(target)
        print(f"wrote {target}", file=sys.stderr)
        return target
