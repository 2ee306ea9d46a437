"""docs/metadata.md's field tables are written from runtime/rnnedge.schema.json: this test fails when they drift.

``python tests/contract/test_schema_docs.py`` rewrites them in place after the schema changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "metadata.md"
SCHEMA_FILE = REPO / "runtime" / "rnnedge.schema.json"
BEGIN = (
    "<!-- tables written from runtime/rnnedge.schema.json by tests/contract/test_schema_docs.py: edit the schema -->"
)
END = "<!-- end of the tables written from the schema -->"
_DEFS = {
    "batch_tensor": "tensor spec, `batch` first",
    "tensor": "tensor spec",
    "state": 'state spec `{"input": tensor spec with a batch axis, "output": string}`',
    "lengths": 'tensor spec: int64, shape `["batch"]`',
    "standardize": '`{"mean": [numbers], "std": [numbers]}`, one per feature, `\\|value\\| ≤ 10^6`, std ≥ 10^-6',
}


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return _DEFS[prop["$ref"].rsplit("/", 1)[1]]
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " or ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    kind = prop["type"]
    if kind == "array":
        items = prop["items"]
        text = f"list, each a {_type(items)}" if "$ref" in items else f"list of {_type(items)}s"
        if prop.get("minItems"):
            text += ", at least one"
        if prop.get("uniqueItems"):
            text += ", each once"
        return text
    if kind == "object" and "additionalProperties" in prop:
        return f"object of {_type(prop['additionalProperties'])}s"
    if kind == "integer" and prop.get("minimum") == 0:
        return "int ≥ 0"
    return {"integer": "int", "number": "number", "string": "string", "boolean": "boolean", "object": "object"}[kind]


def _table(properties: dict[str, Any], required: list[str]) -> list[str]:
    lines = ["| field | type | required | meaning |", "| --- | --- | --- | --- |"]
    for key, prop in properties.items():
        lines.append(f"| `{key}` | {_type(prop)} | {'yes' if key in required else 'no'} | {prop['description']} |")
    return lines


def render(schema: dict[str, Any]) -> str:
    """The tables: the fields every file has, then one table per kind section."""
    lines = [BEGIN, "", *_table(schema["properties"], schema["required"])]
    for rule in schema["allOf"]:
        kind = rule["if"]["properties"]["kind"]
        name = rule["then"]["$ref"].rsplit("/", 1)[1]
        section = schema["$defs"]["kinds"][name]
        kinds = ", ".join(f"`{k}`" for k in kind.get("enum", [kind.get("const")]))
        lines += [
            "",
            f"**The {section['title']} section** (`$defs/kinds/{name}`; kind {kinds}). {section['description']}",
        ]
        lines += ["", *_table(section["properties"], section["required"])]
    return "\n".join([*lines, "", END])


def _current(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def test_the_field_tables_are_the_schemas() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{DOC} lacks the markers of its generated tables"
    want = render(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    assert _current(text) == want, (
        "docs/metadata.md's tables differ from the schema: run python tests/contract/test_schema_docs.py"
    )


if __name__ == "__main__":
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(_current(text), render(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))))
    sys.exit(0)
