"""The faults issue 12 found in the bench, one test each: its place, its children, its config reading, its errors.

- it lived inside the runtime and reached into private modules: now ``rnnedge.bench`` on the public API;
- its cold-start child was a program kept in a string: now ``python -m rnnedge.bench.cold_child``;
- it read training config keys with silent defaults: now a ModelFileError naming the field;
- ValueError / RuntimeError reached users as tracebacks: now typed rnnedge errors;
- fp16 language models could not be benched (no ``--provider``; the error spoke of ``provider='cuda'``).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import rnnedge.bench
import rnnedge.runtime
from rnnedge.bench import (
    BenchError,
    bare_session,
    cold_start,
    interleaved,
    measure_limits_in_subprocess,
    summarize,
    weights_per_step,
)
from rnnedge.cli.main import cli
from rnnedge.errors import ConfigError, ModelFileError, ProviderError, RnnEdgeError
from rnnedge.runtime import read_metadata

BENCH_DIR = Path(rnnedge.bench.__file__).parent


# -- the runtime is inference only; the bench stands on its public API ------------------------------
def test_the_runtime_has_no_bench_subpackage() -> None:
    import importlib.util

    assert importlib.util.find_spec("rnnedge.runtime.bench") is None
    assert not (Path(rnnedge.runtime.__file__).parent / "bench").exists()


def test_the_bench_imports_only_the_runtimes_public_api() -> None:
    public = set(rnnedge.runtime.__all__)
    for source in sorted(BENCH_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.ImportFrom):
                where = f"{source.name}:{node.lineno}"
                assert node.level <= 1, f"{where} reaches above rnnedge.bench"
                module = node.module or ""
                assert not module.startswith("rnnedge.runtime."), f"{where} imports a runtime module: {module}"
                if module == "rnnedge.runtime":
                    private = {a.name for a in node.names} - public
                    assert not private, f"{where} imports names outside rnnedge.runtime.__all__: {private}"
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
                assert not any(n.startswith("rnnedge.runtime.") for n in names), f"{source.name}:{node.lineno}"


# -- the cold-start child is a module run with python -m -----------------------------------------
def test_importing_the_bench_loads_neither_numpy_nor_onnxruntime() -> None:
    code = "import sys, rnnedge.bench; print(sorted(m for m in ('numpy', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves_to_its_object() -> None:
    import importlib
    import types

    importlib.import_module("rnnedge.bench.report")  # imports every submodule: none may shadow a public name
    assert sorted(rnnedge.bench.__all__) == sorted(rnnedge.bench._WHERE)
    for name in rnnedge.bench.__all__:
        assert not isinstance(getattr(rnnedge.bench, name), types.ModuleType), name
    assert callable(rnnedge.bench.cold_start) and callable(rnnedge.bench.matmul_model)


@pytest.mark.parametrize("mode", ["rnnedge", "bare"])
def test_the_cold_start_child_runs_as_a_module(mode: str, tiny_lm_onnx: Path) -> None:
    command = [sys.executable, "-m", "rnnedge.bench.cold_child", mode, str(tiny_lm_onnx), "1", "3", "cpu"]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    values = json.loads(out.stdout.strip().splitlines()[-1])
    assert values["numpy_preloaded"] is False  # the clocks started before numpy was imported
    assert values["import_numpy_s"] > 0 and values["import_onnxruntime_s"] > 0 and values["load_s"] > 0
    assert (values["import_rnnedge_s"] > 0) == (mode == "rnnedge")
    assert values["max_rss_bytes"] >= values["max_rss_after_imports_bytes"] > 0


# -- config keys are read explicitly ----------------------------------------------------------------
def _without(meta: Any, key: str, value: object = None) -> Any:
    """``meta`` with ``config.model[key]`` removed (``value`` None) or replaced."""
    model = {k: v for k, v in meta.config["model"].items() if k != key}
    if value is not None:
        model[key] = value
    return dataclasses.replace(meta, config={**meta.config, "model": model})


@pytest.mark.parametrize(
    ("fixture", "key"),
    [
        ("tiny_lm_onnx", "num_layers"),  # was taken as 1
        ("tiny_lm_onnx", "vocab_size"),
        ("tiny_lm_onnx", "hidden_size"),  # was a KeyError
        ("tiny_onnx", "input_size"),  # was taken from the input's shape
        ("tiny_onnx", "num_classes"),  # was taken as 10
        ("tiny_onnx", "bidirectional"),  # was taken as False
    ],
)
def test_a_missing_config_field_is_named(fixture: str, key: str, request: pytest.FixtureRequest) -> None:
    meta = read_metadata(request.getfixturevalue(fixture))
    with pytest.raises(ModelFileError, match=rf"metadata field config\.model\.{key} is missing"):
        weights_per_step(_without(meta, key))


def test_a_mistyped_config_field_and_a_missing_configuration(tiny_lm_onnx: Path) -> None:
    meta = read_metadata(tiny_lm_onnx)
    with pytest.raises(ModelFileError, match=r"config\.model\.num_layers must be a positive integer, got '2'"):
        weights_per_step(_without(meta, "num_layers", "2"))  # was read as int("2")
    with pytest.raises(ModelFileError, match=r"config\.model\.num_layers must be a positive integer, got True"):
        weights_per_step(_without(meta, "num_layers", True))
    with pytest.raises(ModelFileError, match=r"config\.model \(the model's configuration\) is missing"):
        weights_per_step(dataclasses.replace(meta, config={}))  # was a ValueError


def _with_metadata(src: Path, dst: Path, edit: Any) -> Path:
    """A copy of ``src`` whose rnnedge metadata JSON went through ``edit`` (needs onnx)."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(src))
    (prop,) = (p for p in model.metadata_props if p.key == "rnnedge")
    raw = json.loads(prop.value)
    edit(raw)
    prop.value = json.dumps(raw)
    onnx.save(model, str(dst))
    return dst


def test_bench_refuses_a_file_without_a_config_field_before_timing(tiny_lm_onnx: Path, tmp_path: Path) -> None:
    path = _with_metadata(tiny_lm_onnx, tmp_path / "m.onnx", lambda raw: raw["config"]["model"].pop("num_layers"))
    result = CliRunner().invoke(cli, ["bench", str(path), "--rounds", "1", "--cold-runs", "0", "--no-limits"])
    assert result.exit_code == 1, result.output
    assert f"ModelFileError: {path}: metadata field config.model.num_layers is missing" in result.output


# -- typed errors, never a ValueError or RuntimeError -------------------------------------------
def test_timing_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="rounds must be >= 1, got 0"):
        interleaved({"x": lambda: None}, rounds=0)
    with pytest.raises(ConfigError, match="no samples"):
        summarize([])


def _fake_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for the interpreter the bench starts."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            "echo 'ModuleNotFoundError: No module named rnnedge' >&2; exit 1",
            "exited with status 1: ModuleNotFoundError",
        ),
        ("kill -SEGV $$", "was killed by SIGSEGV"),
        ("echo not json", "printed no result"),
    ],
)
def test_a_failing_child_is_a_bench_error(body: str, why: str, tiny_onnx: Path, tmp_path: Path) -> None:
    python = _fake_python(tmp_path, body)
    with pytest.raises(BenchError, match=f"cold start of rnnedge: .*{why}") as info:
        cold_start(tiny_onnx, runs=1, python=python)
    assert isinstance(info.value, RnnEdgeError)
    with pytest.raises(BenchError, match=f"machine limits: .*{why}"):
        measure_limits_in_subprocess(1024, (), threads=1, python=python)


def test_bench_reports_a_failing_child_as_a_message(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, "echo 'boom' >&2; exit 3"))
    result = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--rounds", "1", "--cold-runs", "1", "--no-limits"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # click's message, not an exception's traceback
    assert "BenchError: cold start of rnnedge: the fresh interpreter exited with status 3: boom" in result.output


# -- fp16 language models: --provider, and a message in the command's terms -----------------------
@pytest.fixture
def fp16_lm(tiny_lm_onnx: Path, tmp_path: Path) -> Path:
    """The tiny language model marked as an fp16 variant: the refusals read the variant, nothing runs."""
    return _with_metadata(tiny_lm_onnx, tmp_path / "m.fp16.onnx", lambda raw: raw.update(variant="fp16"))


def _no_cuda() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is available here: the refusals below are for machines without it")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "the default provider is cpu (no --provider was given)"),  # was: "--provider cpu was given"
        (["--provider", "cpu"], "--provider cpu was given"),
        (["--provider", "auto"], "found no CUDA"),
    ],
)
def test_fp16_off_cuda_names_the_provider_option(fp16_lm: Path, args: list[str], said: str) -> None:
    _no_cuda()
    result = CliRunner().invoke(cli, ["bench", str(fp16_lm), *args, "--rounds", "1", "--cold-runs", "0"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ProviderError: ") and "fp16 model" in result.output
    assert said in result.output and "use --provider cuda" in result.output
    assert "provider='cuda'" not in result.output


def test_provider_cuda_without_cuda_says_what_to_install(tiny_lm_onnx: Path) -> None:
    _no_cuda()
    result = CliRunner().invoke(cli, ["bench", str(tiny_lm_onnx), "--provider", "cuda", "--cold-runs", "0"])
    assert result.exit_code == 1 and "ProviderError" in result.output and "onnxruntime-gpu" in result.output


def test_provider_auto_benches_on_the_cpu_without_cuda(tiny_lm_onnx: Path) -> None:
    _no_cuda()
    args = ["bench", str(tiny_lm_onnx), "--provider", "auto", "--rounds", "1", "--cold-runs", "0", "--no-limits"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["provider"] == "cpu"


def test_the_bare_session_refuses_fp16_on_the_cpu(fp16_lm: Path) -> None:
    # A hand-written CPU session of an fp16 graph would crash the process in onnxruntime's optimiser.
    with pytest.raises(ProviderError, match="fp16 model"):
        bare_session(fp16_lm, 1, "cpu")
    with pytest.raises(ProviderError, match="provider must be 'cpu' or 'cuda'"):
        bare_session(fp16_lm, 1, "auto")  # a resolved provider: "auto" would be a KeyError
