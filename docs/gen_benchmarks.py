"""The benchmark pages, made from the JSON that ``benchmarks/*.py --json`` writes into docs/benchmarks/data/.

mkdocs-gen-files runs this at every build (``make docs``): one page per JSON file, ``benchmarks/NAME.md``,
and the list of them at the end of ``benchmarks/index.md``. Rerunning a benchmark with ``--json`` refreshes its page.
``render`` and ``index`` are plain functions of the data (tests/test_docs_benchmarks.py checks them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "benchmarks" / "data"
FORMAT = 1  # benchmarks/results.py writes this format


def number(value: Any) -> str:
    """A cell as the page shows it: numbers rounded to what a shared machine's timing supports."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.2f}" if magnitude >= 1 else f"{value:.3f}"
    return f"{value:.1e}"


def _table(table: dict[str, Any]) -> list[str]:
    lines = [f"### {table['title']}", ""]
    lines.append("| " + " | ".join(table["columns"]) + " |")
    lines.append("|" + " --- |" * len(table["columns"]))
    lines += ["| " + " | ".join(number(c) for c in row) + " |" for row in table["rows"]]
    if table.get("note"):
        lines += ["", table["note"]]
    return [*lines, ""]


def _machine(machine: dict[str, Any]) -> str:
    parts = [machine.get("cpu", "unknown CPU")]
    cpus = machine.get("usable_cpus", machine.get("logical_cpus"))
    if cpus:
        parts.append(f"{cpus} CPUs usable")
    if "memory_gib" in machine:
        parts.append(f"{machine['memory_gib']} GiB")
    parts.append(machine.get("platform", ""))
    return ", ".join(p for p in parts if p)


def render(record: dict[str, Any]) -> str:
    """One benchmark's page: what ran, where and when, then its tables."""
    if record.get("format") != FORMAT:
        raise ValueError(f"{record.get('benchmark')}: format {record.get('format')!r}, expected {FORMAT}")
    machine = record["machine"]
    versions = ", ".join(f"{k} {machine[k]}" for k in ("python", "numpy", "onnxruntime", "torch") if k in machine)
    lines = [
        f"# {record['title'].rstrip('.')}",
        "",
        "| | |",
        "| --- | --- |",
        f"| command | `{record['command']}` |",
        f"| date (UTC) | {record['date']} |",
        f"| machine | {_machine(machine)} |",
        f"| software | {versions} |",
    ]
    if "load_average_1min_at_start" in machine:
        lines.append(f"| load average at start | {machine['load_average_1min_at_start']} |")
    for model in record.get("models", []):
        size = f"{model['size_bytes'] / 1e6:.2f} MB, " if "size_bytes" in model else ""
        digest = f"sha256 `{model['sha256'][:16]}…`" if "sha256" in model else ""
        lines.append(f"| model | `{model['file']}` ({size}{digest}) |")
    lines += [f"| took | {record['seconds']:.0f} s |", ""]
    for table in record["tables"]:
        lines += _table(table)
    lines += [f"{note}\n" for note in record.get("notes", [])]
    data = f"docs/benchmarks/data/{record['benchmark']}.json"
    lines.append(f"The data: `{data}`. Rerun the command with `--json` to refresh it.")
    return "\n".join(lines) + "\n"


def index(records: list[dict[str, Any]]) -> str:
    """The list of pages appended to docs/benchmarks/index.md: one line per benchmark."""
    lines = ["| benchmark | date (UTC) | machine |", "| --- | --- | --- |"]
    for record in sorted(records, key=lambda r: r["title"]):
        cpus = record["machine"].get("usable_cpus", record["machine"].get("logical_cpus", "?"))
        title = record["title"].rstrip(".")
        lines.append(f"| [{title}]({record['benchmark']}.md) | {record['date'][:10]} | {cpus} CPUs |")
    if not records:
        lines.append("| (no results yet: run a benchmark with `--json`) | | |")
    return "\n".join(lines) + "\n"


def load_all(folder: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


def generate() -> None:
    import mkdocs_gen_files

    records = load_all()
    for record in records:
        with mkdocs_gen_files.open(f"benchmarks/{record['benchmark']}.md", "w") as page:
            page.write(render(record))
    with mkdocs_gen_files.open("benchmarks/index.md", "a") as page:  # after the page's own text
        page.write(index(records))


if __name__ == "<run_path>":  # run by mkdocs-gen-files
    generate()
