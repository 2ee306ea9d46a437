"""``rnnedge export`` as a new user meets it: paths, names, stale files, unwritable outputs, whole errors.

Each test holds one fault found trying the command (issue 12); docs/bad_input.md lists them.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rnnedge.cli.main import cli
from rnnedge.errors import ExportValidationError
from rnnedge.export.batch import model_names
from rnnedge.runtime import read_metadata


def run(args: list[str], status: int, *names: str) -> Result:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == status, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for name in names:
        assert name in result.output, result.output
    return result


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    result = run(["export", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "x.onnx")], 2, "nope.pt", "no such file")
    assert "got 1 paths" not in result.output
    run(["export", str(tmp_path / "runs" / "*"), "-o", str(tmp_path / "dist")], 2, "matches no file or folder")
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("name", ["model.bin", "model.onx", "model.ONNX"])
def test_an_output_that_is_neither_a_model_file_nor_a_folder(name: str, tmp_path: Path) -> None:
    (tmp_path / "c.pt").write_bytes(b"not read")
    run(["export", str(tmp_path / "c.pt"), "-o", str(tmp_path / name)], 2, name, "must end in .onnx", f"{name}/")
    assert not (tmp_path / name).exists()


def test_a_device_or_a_file_as_the_batch_folder(tmp_path: Path) -> None:
    (tmp_path / "c.pt").write_bytes(b"not read")
    run(["export", str(tmp_path / "c.pt"), "-o", "/dev/full"], 2, "/dev/full exists and is not a folder")
    (tmp_path / "dist").write_text("a file")
    run(["export", str(tmp_path / "c.pt"), "-o", str(tmp_path / "dist")], 2, "exists and is not a folder")


def test_unwritable_outputs_are_messages(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = str(tiny_checkpoint)
    run(["export", ckpt, "-o", "/proc/x/m.onnx"], 1, "ModelFileError: cannot write /proc/x/m.onnx")
    run(["export", ckpt, "-o", "/proc/x/dist/"], 1, "ModelFileError: cannot write /proc/x/dist")
    (tmp_path / "full.onnx").symlink_to("/dev/full")  # renaming over it would replace the device
    run(["export", ckpt, "-o", str(tmp_path / "full.onnx")], 1, "full.onnx", "is a character device")
    assert (tmp_path / "full.onnx").is_symlink() and os.readlink(tmp_path / "full.onnx") == "/dev/full"
    (tmp_path / "folder.onnx").mkdir()
    run(["export", ckpt, "-o", str(tmp_path / "folder.onnx")], 1, "folder.onnx", "is a folder")


def test_a_model_file_already_there_is_replaced_only_with_force(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt, target = str(tiny_checkpoint), tmp_path / "m.onnx"
    target.write_bytes(b"another model's file")
    run(["export", ckpt, "-o", str(target)], 1, "ConfigError", f"{target} already exists", "--force")
    assert target.read_bytes() == b"another model's file"
    (tmp_path / "m.int8.onnx").write_bytes(b"another int8 file")  # a variant this export would write, too
    run(["export", ckpt, "-o", str(target), "--quantize", "int8"], 1, f"{target} and {tmp_path / 'm.int8.onnx'}")
    assert (tmp_path / "m.int8.onnx").read_bytes() == b"another int8 file"
    run(["export", ckpt, "-o", str(target), "--force"], 0)
    assert read_metadata(target).format_version >= 1  # this export's model file now, asked for


def test_a_full_disk_is_a_message(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    target = tmp_path / "m.onnx"
    run(["export", str(tiny_checkpoint), "-o", str(target)], 1, f"cannot write {target}: No space left on device")
    assert list(tmp_path.iterdir()) == []


def _runs(root: Path, checkpoint: Path, *runs: str) -> Path:
    for name in runs:
        (root / name).mkdir(parents=True)
        shutil.copy(checkpoint, root / name / "checkpoint.pt")
    return root


def test_batch_names_are_stable_and_say_where_a_run_came_from(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for run_dir in ("b/run", "a/run", "one", "two"):
        (root / run_dir).mkdir(parents=True)
        (root / run_dir / "checkpoint.pt").write_bytes(b"x")
    (root / "one" / "best.pt").write_bytes(b"x")
    names = {str(p.relative_to(root.resolve())): n for p, n in model_names([root]).items()}
    assert names == {
        "a/run/checkpoint.pt": "a-run",
        "b/run/checkpoint.pt": "b-run",
        "one/checkpoint.pt": "one",
        "one/best.pt": "one-best",
        "two/checkpoint.pt": "two",
    }
    # Named one by one, in either order: the same names (the two "run" folders take their parents').
    for order in ([root / "a" / "run", root / "b" / "run"], [root / "b" / "run", root / "a" / "run"]):
        assert sorted(model_names(order).values()) == ["a-run", "b-run"]
    assert list(model_names([root / "one"]).values()) == ["best", "one"]


def test_batch_export_of_nested_runs(tiny_checkpoint: Path, tmp_path: Path) -> None:
    runs = _runs(tmp_path / "runs", tiny_checkpoint, "a/run", "b/run")
    dist = tmp_path / "dist"
    run(["export", str(runs), "-o", f"{dist}/", "--quiet"], 0, "a-run (float32)", "b-run (float32)")
    assert sorted(p.name for p in dist.iterdir()) == ["a-run.onnx", "b-run.onnx", "manifest.json", "report.md"]


def test_a_reexport_without_a_variant_removes_its_file(tiny_checkpoint: Path, tmp_path: Path, data_dir: Path) -> None:
    runs = _runs(tmp_path / "runs", tiny_checkpoint, "good")
    dist = tmp_path / "dist"
    run(["export", str(runs), "-o", str(dist), "--quantize", "int8", "--data", str(data_dir), "--quiet"], 0)
    assert (dist / "good.int8.onnx").is_file()
    (dist / "good.fp16.onnx").write_bytes(b"left by an earlier export with --quantize fp16")
    result = run(["export", str(runs), "-o", str(dist), "--quiet"], 0, "removed")
    assert sorted(p.name for p in dist.iterdir()) == ["good.onnx", "manifest.json", "report.md"], result.output
    for name in ("good.int8.onnx", "good.fp16.onnx"):  # each said once (the int8 file was said twice)
        assert result.output.count(f"removed  {dist / name} ") == 1, result.output
    listed = {e["file"] for e in json.loads((dist / "manifest.json").read_text())["models"]}
    assert listed == {"good.onnx"}


def test_a_batch_failure_is_shown_whole(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnedge.export import exporter

    def refuse(path: Path, reference: object, **options: object) -> None:
        raise ExportValidationError("good.onnx: the exported graph does not match PyTorch", ["first", "second"])

    monkeypatch.setattr(exporter, "validate_export", refuse)
    runs = _runs(tmp_path / "runs", tiny_checkpoint, "good")
    result = run(["export", str(runs), "-o", str(tmp_path / "dist"), "--quiet"], 1, "1 of 1 exports failed")
    assert re.search(r"does not match PyTorch\n\s+- first\n\s+- second\n", result.output), result.output


def test_a_long_list_of_mismatches_is_cut_in_the_message_and_kept_whole() -> None:
    err = ExportValidationError("m.onnx: the exported graph does not match PyTorch", [f"check {i}" for i in range(30)])
    assert "- check 9\n" in str(err) and "check 10" not in str(err)
    assert str(err).endswith("... and 20 more (the error's `mismatches` lists every one)")
    assert len(err.mismatches) == 30


def test_variant_quality_is_formatted_and_reproducible_with_classify(
    tiny_checkpoint: Path, tmp_path: Path, data_dir: Path
) -> None:
    model = tmp_path / "m.onnx"
    result = run(["export", str(tiny_checkpoint), "-o", str(model), "--quantize", "int8", "--data", str(data_dir)], 0)
    assert re.search(r"test_accuracy_change [+-]\d\.\d{4}(,|$)", result.output, re.M), result.output
    assert not re.search(r"\d\.\d{7}", result.output), result.output
    meta = read_metadata(tmp_path / "m.int8.onnx")
    quality = meta.quality
    assert quality["test_accuracy_change"] == round(quality["test_accuracy"] - quality["float_test_accuracy"], 10)
    assert "rnnedge classify" in meta.notes["quality"]
    for path, key in ((tmp_path / "m.int8.onnx", "test_accuracy"), (model, "float_test_accuracy")):
        out = run(["classify", str(path), "--data", str(data_dir), "--quiet"], 0).output
        assert f"test accuracy {quality[key]:.4f}" in out, (out, quality)


def test_variant_perplexity_is_reproducible_with_perplexity(tiny_lm_onnx: Path, tmp_path: Path, ptb_data: Path) -> None:
    from rnnedge.export.quality import measure_quality
    from rnnedge.export.quantize import quantize_int8

    result = quantize_int8(tiny_lm_onnx, tmp_path / "lm.int8.onnx", lambda p: measure_quality(p, ptb_data))
    quality = result.metadata.quality
    assert "rnnedge perplexity" in result.metadata.notes["quality"]
    test_file = ptb_data / "ptb" / "ptb.test.txt"
    for path, key in ((result.path, "test_perplexity"), (tiny_lm_onnx, "float_test_perplexity")):
        out = run(["perplexity", str(path), str(test_file), "--quiet"], 0).output
        assert f"perplexity {quality[key]:.2f}" in out, (out, quality)
