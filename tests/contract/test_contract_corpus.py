"""The file format as data: the schema, the shared corpus, and the rules both runtimes implement once.

Writes ``js/test/fixtures/contract/`` (git-ignored): ``corpus.json`` (metadata cases, model files,
token cases, sampler draws) and the model files it names; ``js/test/contract.test.js`` runs the
JavaScript runtime over the same corpus. Here the Python runtime and the JSON Schema
(``runtime/rnnedge.schema.json``, through the ``jsonschema`` package) run it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from corpus import metadata_cases, sampler_cases, token_cases

from rnnedge.errors import ModelFileError, RnnEdgeError
from rnnedge.runtime import load, read_metadata
from rnnedge.runtime.metadata import SCHEMA, ModelMetadata
from rnnedge.runtime.sampling import Pcg32, sample, top_k_ids

jsonschema = pytest.importorskip("jsonschema", reason="the schema is checked with the dev extra's jsonschema")

OUT = Path(__file__).resolve().parents[2] / "js" / "test" / "fixtures" / "contract"


def _validator() -> Any:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    return cls(SCHEMA)


def _metadata(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(read_metadata(path).to_json())
    return parsed


@pytest.fixture(scope="module")
def bases(tiny_onnx: Path, tiny_bi_onnx: Path, tiny_lm_onnx: Path) -> dict[str, dict[str, Any]]:
    return {"clf": _metadata(tiny_onnx), "bi": _metadata(tiny_bi_onnx), "lm": _metadata(tiny_lm_onnx)}


def test_the_schema_accepts_every_file_export_writes(
    tiny_onnx: Path, tiny_bi_onnx: Path, tiny_lm_onnx: Path, tmp_path: Path
) -> None:
    """Every kind's export, float32 and int8: the stored JSON text itself, as the runtime reads it."""
    pytest.importorskip("onnx", reason="int8 variants are made with the export extra")
    from rnnedge.export.quantize import quantize_int8

    torch = pytest.importorskip("torch", reason="the tagger is exported from a module with the train extra")
    from rnnedge.export import export_module

    class Tagger(torch.nn.Module):  # the tagger kind comes from a user's own module
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 4, batch_first=True)
            self.out = torch.nn.Linear(4, 2)

        def forward(self, x: Any) -> Any:
            return self.out(self.lstm(x)[0])

    tagger = export_module(Tagger(), tmp_path / "tagger.onnx", task="tagger").path
    files = [tiny_onnx, tiny_bi_onnx, tiny_lm_onnx, tagger]
    files += [quantize_int8(f, tmp_path / f"{f.stem}.int8.onnx").path for f in (tiny_onnx, tiny_lm_onnx, tagger)]
    validator, kinds = _validator(), set()
    for path in files:
        import onnx

        text = {p.key: p.value for p in onnx.load(str(path)).metadata_props}["rnnedge"]
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(json.loads(text))
        ]
        assert not errors, f"{path.name}: {errors}"
        kinds.add(json.loads(text)["kind"])
    assert kinds == set(SCHEMA["properties"]["kind"]["enum"])


def test_python_runs_the_shared_corpus_and_writes_it_for_javascript(
    bases: dict[str, dict[str, Any]], tiny_onnx: Path, tiny_bi_onnx: Path, tiny_lm_onnx: Path
) -> None:
    cases = metadata_cases(bases)
    validator = _validator()
    for case in cases:
        error = case["error"]
        if error is None:
            meta = ModelMetadata.from_json(case["text"])
            assert ModelMetadata.from_json(meta.to_json()) == meta, case["name"]
        else:
            with pytest.raises(ModelFileError) as caught:
                ModelMetadata.from_json(case["text"])
            assert error["message"] in str(caught.value), (case["name"], str(caught.value))
        if case["schema"] is not None:
            schema_refuses = not validator.is_valid(json.loads(case["text"]))
            assert schema_refuses == (error is not None and case["schema"]), case["name"]
    assert {c["name"] for c in cases if c["error"] is None} >= {"clf", "bi", "lm", "chars"}

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    models = _model_cases(tiny_onnx, tiny_bi_onnx, tiny_lm_onnx)
    for model in models:  # the same answers from the Python runtime
        path = OUT / model["file"]
        if model["error"] is None:
            with load(path, threads=1) as loaded:
                assert loaded.kind == model["kind"]
        else:
            with pytest.raises(RnnEdgeError) as caught:
                load(path, threads=1)
            assert type(caught.value).__name__ == model["error"]["class"]
            assert model["error"]["message"] in str(caught.value), (model["file"], str(caught.value))
    corpus = {
        "written_by": "tests/contract/test_contract_corpus.py",
        "metadata": cases,
        "models": models,
        "tokens": token_cases(),
        "sampler": sampler_cases(),
    }
    (OUT / "corpus.json").write_text(json.dumps(corpus))


def _model_cases(tiny_onnx: Path, tiny_bi_onnx: Path, tiny_lm_onnx: Path) -> list[dict[str, Any]]:
    """Whole files: each kind's real export, and files whose metadata the graph contradicts or lacks."""
    onnx = pytest.importorskip("onnx", reason="broken model files are written with the export extra")

    cases: list[dict[str, Any]] = []
    for name, path, kind in (
        ("clf", tiny_onnx, "causal_classifier"),
        ("bi", tiny_bi_onnx, "noncausal_classifier"),
        ("lm", tiny_lm_onnx, "language_model"),
    ):
        shutil.copyfile(path, OUT / f"{name}.onnx")
        cases.append({"file": f"{name}.onnx", "kind": kind, "error": None})

    def broken(name: str, src: Path, edit: Any, error: str, message: str) -> None:
        graph = onnx.load(str(src))
        meta = {p.key: p.value for p in graph.metadata_props}
        del graph.metadata_props[:]
        text = edit(json.loads(meta["rnnedge"]))
        if text is not None:
            graph.metadata_props.add(key="rnnedge", value=text)
        onnx.save(graph, str(OUT / f"{name}.onnx"))
        cases.append({"file": f"{name}.onnx", "kind": None, "error": {"class": error, "message": message}})

    def renamed_output(m: dict[str, Any]) -> str:
        m["states"][0]["output"] = "h_next"
        return json.dumps(m)

    def wider_state(m: dict[str, Any]) -> str:
        m["states"][0]["input"]["shape"][-1] = 7
        return json.dumps(m)

    broken("no-metadata", tiny_onnx, lambda m: None, "ModelFileError", "carries no rnnedge metadata")
    broken("state-output-not-in-graph", tiny_onnx, renamed_output, "ModelFileError", "graph and metadata disagree")
    broken("state-size-differs", tiny_lm_onnx, wider_state, "ModelFileError", "graph and metadata disagree")
    broken(
        "format-2", tiny_lm_onnx, lambda m: json.dumps({**m, "format_version": 2}), "ModelFileError", "upgrade rnnedge"
    )
    return cases


def test_each_kind_section_of_the_schema_has_checks_and_kinds() -> None:
    """Every kind the schema names has a section, and every section has the runtime's checks across fields."""
    from rnnedge.runtime import metadata

    sections = set(SCHEMA["$defs"]["kinds"])
    assert set(metadata._SECTION_OF) == set(metadata.MODEL_KINDS)
    assert set(metadata._SECTION_OF.values()) == sections == set(metadata._KIND_CHECKS)
    assert metadata.FORMAT_VERSION == 1
    from rnnedge.data.text import TOKEN_MODES

    assert TOKEN_MODES == metadata.TOKEN_MODES  # the tokeniser splits as the schema's modes say


def test_pcg32_gives_the_reference_outputs() -> None:
    """pcg32_srandom_r(42, 54): the first outputs of the PCG reference's demo (pcg32-demo.c)."""
    rng = Pcg32(42)
    assert [rng.next_uint32() for _ in range(6)] == [
        0xA15C02B7,
        0x7B47F409,
        0xBA1D3330,
        0x83D2F293,
        0xBFA4784B,
        0xCBED606E,
    ]
    assert all(0 <= Pcg32(s).uniform() < 1 for s in range(100))


def test_sampler_follows_its_spec() -> None:
    """Top-k ties break by id; top-k 1 is greedy; a tiny temperature keeps the maxima only; draws follow probs."""
    probs = np.array([0.1, 0.3, 0.3, 0.2, 0.1], np.float32)
    assert top_k_ids(probs, 3).tolist() == [1, 2, 3]
    assert top_k_ids(np.stack([probs, probs[::-1]]), 2).tolist() == [[1, 2], [2, 3]]
    rng = Pcg32(5)
    assert {sample(probs, 1.0, 1, rng) for _ in range(50)} == {1}
    assert {sample(probs, 1e-4, None, rng) for _ in range(50)} == {1, 2}  # equal maxima weigh 1 each
    assert {sample(probs, 1.0, 2, rng) for _ in range(200)} == {1, 2}
    counts = np.bincount([sample(probs, 1.0, None, rng) for _ in range(20_000)], minlength=5) / 20_000
    assert np.abs(counts - probs).max() < 0.015
    flat = np.bincount([sample(probs, 100.0, None, rng) for _ in range(20_000)], minlength=5) / 20_000
    assert np.abs(flat - 0.2).max() < 0.02  # a high temperature flattens the distribution
