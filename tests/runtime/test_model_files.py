"""Model files that are not what they claim: each gets a ModelFileError naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnedge.errors import ModelFileError
from rnnedge.runtime import load
from rnnedge.runtime.metadata import FORMAT_VERSION, MAX_METADATA_BYTES, METADATA_KEY, ModelMetadata

onnx = pytest.importorskip("onnx", reason="these tests craft model files with the onnx package")


def _with_metadata(src: Path, dst: Path, value: str | None) -> Path:
    model = onnx.load(str(src))
    del model.metadata_props[:]
    if value is not None:
        model.metadata_props.add(key=METADATA_KEY, value=value)
    onnx.save(model, str(dst))
    return dst


def _resize_state(meta: dict, size: int) -> str:
    states = [
        dict(s, input=dict(s["input"], shape=[1, "batch", size])) if s["input"]["name"] in ("h", "c") else s
        for s in meta["states"]
    ]
    return json.dumps({**meta, "states": states})


def _metadata_dict(path: Path) -> dict:
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[METADATA_KEY])


def test_missing_empty_truncated_and_not_onnx(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read"):
        load(tmp_path / "absent.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelFileError, match="is empty"):
        load(tmp_path / "empty.onnx")
    (tmp_path / "cut.onnx").write_bytes(tiny_onnx.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="cannot load"):
        load(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("hello, not a model")
    with pytest.raises(ModelFileError, match="cannot load"):
        load(tmp_path / "text.onnx")


def test_valid_onnx_without_our_metadata(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="carries no rnnedge metadata"):
        load(_with_metadata(tiny_onnx, tmp_path / "plain.onnx", None))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: "{not json", "not valid JSON"),
        (lambda m: json.dumps({**m, "format_version": FORMAT_VERSION + 1}), "upgrade rnnedge"),
        (lambda m: json.dumps({**m, "kind": "transformer"}), "kind is 'transformer'"),
        (lambda m: json.dumps({k: v for k, v in m.items() if k != "states"}), "states is missing"),
        (lambda m: json.dumps({**m, "labels": None}), "labels is None"),
        (lambda m: json.dumps({k: v for k, v in m.items() if k != "labels"}), "a classifier's metadata must carry"),
        (lambda m: json.dumps({**m, "input": {**m["input"], "dtype": "complex64"}}), "dtype is 'complex64'"),
        (lambda m: json.dumps({**m, "preprocessing": {"scale": 1, "mean": 0, "std": 1}}), "not part of format 1"),
        (lambda m: json.dumps({**m, "standardize": {**m["standardize"], "std": [0] * 28}}), "std has 0"),
        (lambda m: json.dumps({**m, "input": {**m["input"], "name": "pixels"}}), "graph and metadata disagree"),
        (lambda m: json.dumps({**m, "quality": {"acc": "high"}}), "quality must map names to numbers"),
        (lambda m: json.dumps(m) + " " * MAX_METADATA_BYTES, "over the"),
        (lambda m: "[" * 100000 + "]" * 100000, "not valid JSON"),
        (lambda m: json.dumps({**m, "labels": ["a", "b", "c"]}), r"logits \(batch, 3\) to match its labels"),
        (lambda m: json.dumps({**m, "outputs": m["outputs"][:1]}), "needs output probs"),
        (lambda m: json.dumps({**m, "input": {**m["input"], "shape": ["batch", "sequence", "f"]}}), "features"),
        (lambda m: json.dumps({**m, "states": [m["states"][0], m["states"][0]]}), "must appear once"),
        (lambda m: _resize_state(m, 10**12), "expected sizes in"),
        (lambda m: _resize_state(m, 64), "graph and metadata disagree"),
        (lambda m: json.dumps({**m, "quality": {"acc": 10**400}}), "out of range"),
        (lambda m: json.dumps({**m, "standardize": {**m["standardize"], "mean": [10**400] * 28}}), "out of range"),
    ],
)
def test_malformed_metadata(tiny_onnx: Path, tmp_path: Path, edit, message: str) -> None:
    bad = _with_metadata(tiny_onnx, tmp_path / "bad.onnx", edit(_metadata_dict(tiny_onnx)))
    with pytest.raises(ModelFileError, match=message):
        load(bad)


def test_metadata_round_trips(tiny_onnx: Path) -> None:
    meta = load(tiny_onnx).metadata
    assert ModelMetadata.from_json(meta.to_json()) == meta
