"""The language-model commands through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnedge.cli.main import cli
from rnnedge.runtime import load


def test_generate_is_reproducible(tiny_lm_onnx: Path) -> None:
    runner = CliRunner()
    args = ["generate", str(tiny_lm_onnx), "--prompt", "the company", "--max-words", "12", "--seed", "3"]
    a, b = runner.invoke(cli, args), runner.invoke(cli, args)
    assert a.exit_code == 0, a.output
    assert a.output == b.output and a.output.split()
    bad = runner.invoke(cli, ["generate", str(tiny_lm_onnx), "--prompt", "zzqxw", "--strict"])
    assert bad.exit_code == 1 and "TokenError" in bad.output


def test_perplexity_command(tiny_lm_onnx: Path, ptb_data: Path, tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("\n".join((ptb_data / "ptb" / "ptb.test.txt").read_text().splitlines()[:30]) + "\n")
    result = CliRunner().invoke(cli, ["perplexity", str(tiny_lm_onnx), str(text)])
    assert result.exit_code == 0, result.output
    with load(tiny_lm_onnx) as model:
        want = model.perplexity(text)  # type: ignore[attr-defined]
    assert f"perplexity {want:.2f}" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert CliRunner().invoke(cli, ["perplexity", str(tiny_lm_onnx), str(empty)]).exit_code == 1


def test_next_word_streams_predictions(tiny_lm_onnx: Path) -> None:
    result = CliRunner().invoke(
        cli, ["next-word", str(tiny_lm_onnx), "--k", "3", "--strict"], input="the company\nzzqxw\nsaid\n\n"
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert [line.split(" -> ")[0] for line in lines] == ["the", "company", "said", "<eos>"]  # zzqxw: on stderr
    assert all(len(line.split(" -> ")[1].split()) == 6 for line in lines)
    assert "zzqxw" in result.stderr


@pytest.mark.parametrize("command", ["generate", "perplexity", "next-word"])
def test_help(command: str) -> None:
    assert CliRunner().invoke(cli, [command, "--help"]).exit_code == 0


def test_train_ptb_options() -> None:
    result = CliRunner().invoke(cli, ["train", "ptb", "--help"])
    assert result.exit_code == 0
    for option in ("--config", "--epochs", "--max-steps", "--resume", "--seed", "--tie-weights", "--data", "--out"):
        assert option in result.output


def test_language_commands_work_without_torch(without_torch, tiny_lm_onnx: Path, ptb_data: Path) -> None:
    out = without_torch("generate", str(tiny_lm_onnx), "--prompt", "the market", "--max-words", "3", "--seed", "1")
    assert out.returncode == 0 and out.stdout.strip(), out.stderr  # <eos> comes out as a line break
    assert out.stderr == "", out.stderr  # in particular, no onnxruntime warning about the graph
    out = without_torch("perplexity", str(tiny_lm_onnx), str(ptb_data / "ptb" / "ptb.valid.txt"), "--quiet")
    assert out.returncode == 0, out.stderr


def test_next_word_exits_1_with_typed_errors_when_words_are_refused(tiny_lm_onnx: Path) -> None:
    result = CliRunner().invoke(cli, ["next-word", str(tiny_lm_onnx), "--strict"], input="zzqxw\nqqqzz\n")
    assert result.exit_code == 1, result.output  # before: 0, with lowercase "error:" lines
    assert "Error: TokenError:" in result.output and "error: " not in result.output
    assert "strict=False" not in result.output  # an API term, not the command's


def test_language_commands_take_a_provider_and_name_it_for_fp16_files(tiny_lm_onnx: Path, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_lm_onnx))
    for prop in model.metadata_props:
        if prop.key == "rnnedge":
            prop.value = prop.value.replace('"variant":"float32"', '"variant":"fp16"')
    fp16 = tmp_path / "lm.fp16.onnx"
    onnx.save(model, str(fp16))
    text = tmp_path / "t.txt"
    text.write_text("the company said\n")
    for args in (["generate", str(fp16)], ["perplexity", str(fp16), str(text)], ["next-word", str(fp16)]):
        result = CliRunner().invoke(cli, [*args, "--provider", "cpu"], input="the\n")
        assert result.exit_code == 1, result.output
        assert "ProviderError" in result.output and "--provider cuda" in result.output, result.output


def test_a_language_command_on_a_classifier_says_so_typed(tiny_onnx: Path) -> None:
    result = CliRunner().invoke(cli, ["generate", str(tiny_onnx)])
    assert result.exit_code == 1
    assert "ModelFileError" in result.output and "not a language model" in result.output


def test_info_prints_plain_text_with_the_special_word_ids(tiny_lm_onnx: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(tiny_lm_onnx)])
    assert result.exit_code == 0, result.output
    assert "{" not in result.output and "'" not in result.output  # before: Python dict reprs
    assert "unk_id:" in result.output and "eos_id:" in result.output and "eos: <eos>" in result.output
