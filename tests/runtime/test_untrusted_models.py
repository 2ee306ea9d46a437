"""Model files as untrusted input (docs/bad_input.md): whatever the bytes, ``load`` answers with a model
or a ModelFileError, never another exception; metadata is parsed as data with size limits; and no path
inside a model is ever opened.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnedge.errors import ConfigError, ModelFileError, ProviderError, RnnEdgeError
from rnnedge.runtime import ClassifierModel, load
from rnnedge.runtime.metadata import METADATA_KEY, ModelMetadata

onnx = pytest.importorskip("onnx", reason="these tests craft model files with the onnx package")

PROPERTY = settings(deadline=None, max_examples=50, derandomize=True)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("untrusted")


@pytest.fixture(scope="module")
def model_bytes(tiny_onnx: Path) -> bytes:
    return tiny_onnx.read_bytes()


def metadata_of(path: Path) -> dict[str, Any]:
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[METADATA_KEY])


def with_metadata(src: Path, dst: Path, value: str) -> Path:
    graph = onnx.load(str(src))
    del graph.metadata_props[:]
    graph.metadata_props.add(key=METADATA_KEY, value=value)
    onnx.save(graph, str(dst))
    return dst


# -- paths inside a model are never opened ----------------------------------------------------------
def _external(src: Path, folder: Path, location: str) -> tuple[Path, bytes]:
    """``src`` with its largest initializer moved out to ``location``; returns the model and the moved bytes."""
    graph = onnx.load(str(src))
    tensor = max(graph.graph.initializer, key=lambda t: len(t.raw_data))
    data = tensor.raw_data
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(data)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path = folder / "model.onnx"
    path.write_bytes(graph.SerializeToString())
    return path, data


@pytest.mark.parametrize("location", ["../secret.bin", "secret.bin", "ABSOLUTE"])
def test_external_data_is_refused_and_never_read(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    secret = tmp_path / "secret.bin"
    where = str(secret) if location == "ABSOLUTE" else location
    path, weights = _external(tiny_onnx, models, where)
    # The genuine weights lie wherever the location could resolve (beside the model, above it, in the
    # working directory): had any been read, the model would load and work.
    for folder in (tmp_path, models):
        (folder / "secret.bin").write_bytes(weights)
    monkeypatch.chdir(models)
    with pytest.raises(ModelFileError) as info:
        load(path)
    message = str(info.value)
    assert "layer0.W" in message and "outside the file" in message and str(path) in message
    assert "self-contained" in message


def test_external_data_in_a_nested_graph_is_found(tiny_onnx: Path, tmp_path: Path) -> None:
    """A tensor held by a node attribute (a Constant), not an initializer, is checked too."""
    graph = onnx.load(str(tiny_onnx))
    value = onnx.helper.make_tensor("hidden", onnx.TensorProto.FLOAT, [1], [1.0])
    value.ClearField("float_data")
    value.data_location = onnx.TensorProto.EXTERNAL
    entry = value.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    graph.graph.node.append(onnx.helper.make_node("Constant", [], ["unused_constant"], value=value))
    path = tmp_path / "nested.onnx"
    path.write_bytes(graph.SerializeToString())
    with pytest.raises(ModelFileError, match="hidden"):
        load(path)


# -- files that are not what they claim --------------------------------------------------------------
def test_a_folder_a_non_path_and_an_oversized_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"cannot read model file .*: Is a directory"):
        load(tmp_path)
    for bad in (None, 3, b"model.onnx"):
        with pytest.raises(ModelFileError, match=f"model path must be a str or os.PathLike, got {type(bad).__name__}"):
            load(bad)  # type: ignore[arg-type]
    huge = tmp_path / "huge.onnx"
    with open(huge, "wb") as f:  # sparse: 2 GiB + 1 of nothing, refused before a byte is read
        f.truncate(2 * 1024**3 + 1)
    with pytest.raises(ModelFileError, match=r"2147483649 bytes, over the 2147483648-byte limit"):
        load(huge)


def test_metadata_that_is_not_utf8(model_bytes: bytes, tmp_path: Path) -> None:
    at = model_bytes.index(b'"kind":"causal_classifier"') + len(b'"kind":"')
    broken = model_bytes[:at] + b"\xff" + model_bytes[at + 1 :]
    (tmp_path / "latin.onnx").write_bytes(broken)
    with pytest.raises(ModelFileError, match="not UTF-8"):
        load(tmp_path / "latin.onnx")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda m: json.dumps({**m, "format_version": 0}), "invalid format version 0", id="format-version-0"
        ),
        pytest.param(
            lambda m: json.dumps({**m, "format_version": "1"}), "format_version has type str", id="format-version-str"
        ),
        pytest.param(
            lambda m: json.dumps({**m, "format_version": 10**30}), f"format version {10**30}", id="format-version-huge"
        ),
        pytest.param(
            lambda m: json.dumps({**m, "format_version": True}),
            "format_version must not be a boolean",
            id="format-version-bool",
        ),
        pytest.param(lambda m: json.dumps([m]), "<root> must be an object, got list", id="root-is-a-list"),
        pytest.param(
            lambda m: json.dumps({**m, "causal": float("nan")}),
            "not valid JSON: non-standard JSON constant NaN",
            id="nan-constant",
        ),
        pytest.param(lambda m: json.dumps(m)[:-40], "not valid JSON", id="cut-json"),
        pytest.param(
            lambda m: json.dumps(m).replace('"quality": {', '"quality": {"x": 1e999, '),
            "quality.x is inf, expected a finite number",
            id="quality-infinite",
        ),
        pytest.param(
            lambda m: json.dumps({**m, "standardize": {**m["standardize"], "std": [1e-300] * 28}}),
            "expected >= 1e-06",
            id="std-tiny",
        ),
        pytest.param(
            lambda m: json.dumps({**m, "standardize": {**m["standardize"], "scale": 1}}),
            "standardize.scale is not part of format 1",
            id="standardize-unknown-field",
        ),
        pytest.param(
            lambda m: json.dumps({**m, "labels": [str(i) for i in range(9)] + [7]}),
            "labels must be a list of strings",
            id="label-not-a-string",
        ),
        pytest.param(
            lambda m: json.dumps({**m, "states": m["states"][:3]}),
            r"graph inputs \['c', 'h', 'h_sum', 'lengths', 'steps', 'x'\]",
            id="state-missing-from-metadata",
        ),
        pytest.param(
            lambda m: json.dumps({**m, "states": [*m["states"][:3], {**m["states"][3], "output": "steps_next"}]}),
            "output steps_next promised by the metadata is not in the graph",
            id="state-output-not-in-graph",
        ),
        pytest.param(
            lambda m: json.dumps({**m, "input": {**m["input"], "dtype": "float16"}}),
            "input must be float32",
            id="input-dtype",
        ),
    ],
)
def test_more_malformed_metadata(tiny_onnx: Path, tmp_path: Path, edit: Any, message: str) -> None:
    bad = with_metadata(tiny_onnx, tmp_path / "bad.onnx", edit(metadata_of(tiny_onnx)))
    with pytest.raises(ModelFileError, match=message):
        load(bad)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda m: {**m, "unk_id": 10_000},
            r"unk_id is 10000, expected an id in \[0, 10000\)",
            id="unk-id-out-of-range",
        ),
        pytest.param(lambda m: {**m, "eos_id": None}, "eos_id is None", id="eos-id-null"),
        pytest.param(lambda m: {k: v for k, v in m.items() if k != "eos_id"}, "eos_id is missing", id="eos-id-missing"),
        pytest.param(
            lambda m: {**m, "vocabulary": m["vocabulary"][:-1]},
            r"logits \(batch, sequence, 9999\)",
            id="vocabulary-shorter-than-logits",
        ),
        pytest.param(
            lambda m: {**m, "vocabulary": [*m["vocabulary"][:-1], m["vocabulary"][0]]},
            "repeats 1 word",
            id="vocabulary-repeats-a-word",
        ),
        pytest.param(
            lambda m: {k: v for k, v in m.items() if k != "vocabulary"},
            "a language model's metadata must carry it",
            id="no-vocabulary",
        ),
        pytest.param(
            lambda m: {**m, "input": {**m["input"], "dtype": "float32"}},
            "must be int64 \\(batch, sequence\\)",
            id="float-tokens",
        ),
    ],
)
def test_malformed_language_model_metadata(tiny_lm_onnx: Path, tmp_path: Path, edit: Any, message: str) -> None:
    bad = with_metadata(tiny_lm_onnx, tmp_path / "bad-lm.onnx", json.dumps(edit(metadata_of(tiny_lm_onnx))))
    with pytest.raises(ModelFileError, match=message):
        load(bad)


# -- session options ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"threads": 2.5}, ConfigError, "threads must be a positive int .* got 2.5", id="threads-float"),
        pytest.param({"threads": "2"}, ConfigError, "threads must be a positive int .* got '2'", id="threads-str"),
        pytest.param({"threads": True}, ConfigError, "threads must be a positive int .* got True", id="threads-bool"),
        pytest.param({"threads": 10**10}, ConfigError, r"at most 1024\) or None, got 10000000000", id="threads-huge"),
        pytest.param(
            {"optimization": ["all"]},
            ConfigError,
            r"optimization must be one of .* got \['all'\]",
            id="optimization-list",
        ),
        pytest.param(
            {"optimization": None}, ConfigError, "optimization must be one of .* got None", id="optimization-none"
        ),
        pytest.param(
            {"provider": ["cpu"]}, ProviderError, r"'cpu', 'cuda' or 'auto', got \['cpu'\]", id="provider-list"
        ),
        pytest.param({"provider": None}, ProviderError, "'cpu', 'cuda' or 'auto', got None", id="provider-none"),
    ],
)
def test_session_options_of_the_wrong_type(tiny_onnx: Path, kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        load(tiny_onnx, **kwargs)


# -- properties --------------------------------------------------------------------------------------
def _load_or_refuse(path: Path) -> ClassifierModel | None:
    """The only two answers ``load`` may give: a model, or a ModelFileError (returned as None)."""
    try:
        model = load(path, threads=1)
    except ModelFileError:
        return None
    assert isinstance(model, ClassifierModel)
    return model


@PROPERTY
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes_are_a_model_file_error(scratch: Path, data: bytes) -> None:
    path = scratch / "bytes.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelFileError):
        load(path)


@PROPERTY
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_every_truncation_of_a_real_model_is_a_model_file_error(
    scratch: Path, model_bytes: bytes, fraction: float
) -> None:
    path = scratch / "cut.onnx"
    path.write_bytes(model_bytes[: int(fraction * len(model_bytes))])
    with pytest.raises(ModelFileError):
        load(path)


@PROPERTY
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=3))
def test_corrupted_bytes_load_or_are_refused_never_crash(
    scratch: Path, model_bytes: bytes, flips: list[tuple[float, int]]
) -> None:
    """A flipped byte may land in the weights, which no check covers (see docs/bad_input.md, limits)."""
    data = bytearray(model_bytes)
    for where, value in flips:
        data[int(where * len(data))] = value
    path = scratch / "flipped.onnx"
    path.write_bytes(bytes(data))
    model = _load_or_refuse(path)
    if model is not None:
        with contextlib.suppress(RnnEdgeError):  # loaded: a bad answer must still be a typed error
            model.stream().feed(np.zeros((2, 28), np.uint8))
        model.close()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@PROPERTY
@given(value=_JSON)
def test_arbitrary_json_metadata_is_a_model_file_error(value: Any) -> None:
    with pytest.raises(ModelFileError):
        ModelMetadata.from_json(json.dumps(value))


@PROPERTY
@given(text=st.text(max_size=200))
def test_arbitrary_text_metadata_is_a_model_file_error(text: str) -> None:
    with pytest.raises(ModelFileError):
        ModelMetadata.from_json(text)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Key paths into a JSON document, three levels deep (the first three items of a list)."""
    if len(prefix) >= 3:
        return
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, inner in items:
        if isinstance(value, list) and key > 2:
            break
        yield (*prefix, key)
        yield from _paths(inner, (*prefix, key))


@pytest.fixture(scope="module")
def real_metadata(tiny_onnx: Path) -> dict[str, Any]:
    return metadata_of(tiny_onnx)


@PROPERTY
@given(data=st.data())
def test_mutated_metadata_loads_consistently_or_is_refused(
    scratch: Path, tiny_onnx: Path, real_metadata: dict[str, Any], data: st.DataObject
) -> None:
    meta = json.loads(json.dumps(real_metadata))
    path = data.draw(st.sampled_from(sorted(_paths(meta), key=str)))
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(_JSON)
    text = json.dumps(meta)
    try:
        parsed = ModelMetadata.from_json(text)
    except ModelFileError:
        parsed = None
    target = with_metadata(tiny_onnx, scratch / "mutated.onnx", text)
    model = _load_or_refuse(target)
    if model is None:
        return
    assert parsed is not None and model.metadata == parsed
    try:
        probs = model.stream().feed(np.full((3, 28), 128, np.uint8))
    except RnnEdgeError:
        pass
    else:
        assert probs.shape == (len(model.labels),) and np.isfinite(probs).all()
    finally:
        model.close()


def test_a_model_file_error_never_leaves_a_session_behind(tiny_onnx: Path, tmp_path: Path) -> None:
    """Refusing a file many times over must not leak: the process's open files stay flat."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    bad = with_metadata(tiny_onnx, tmp_path / "bad.onnx", "{not json")

    def refuse(times: int) -> int:
        for _ in range(times):
            with pytest.raises(ModelFileError):
                load(bad)
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    before = refuse(5)  # onnxruntime's process-wide resources exist after the first sessions
    assert refuse(50) <= before + 2
