"""Language models of a user's text, words and characters, end to end on real text in seconds.

Tiny models (one LSTM layer of 32) trained on a few hundred lines of PTB's text, with Windows line
ends, capitals, punctuation and non-ASCII characters mixed in: training, export (parity, metadata
version), the runtime fed by characters and by words, generation, and perplexity / bits per
character equal in PyTorch and through the runtime. docs/bad_input.md names the refusals held here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from rnnedge.cli.main import cli
from rnnedge.data.corpus import TextCorpus, load_text_corpus
from rnnedge.errors import CheckpointError, ModelFileError
from rnnedge.runtime import LanguageModel, load, load_language_model
from rnnedge.runtime.metadata import METADATA_KEY

EXTRA = "Ça coûte 3,50 € !\r\nThe END.\r\n\r\n"  # capitals, punctuation, Unicode, CRLF, a blank line


def _write_corpus(ptb_data: Path, root: Path) -> tuple[Path, Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, lines in (("train", 400), ("valid", 40), ("test", 40)):
        text = (ptb_data / "ptb" / f"ptb.{split}.txt").read_text(encoding="utf-8").splitlines(keepends=True)
        path = root / f"{split}.txt"
        path.write_bytes(("".join(text[:lines]) + EXTRA).encode("utf-8"))
        paths.append(path)
    return paths[0], paths[1], paths[2]


def _train(corpus: TextCorpus, out: Path, cell: str = "lstm") -> Path:
    from rnnedge.training.config import LanguageModelConfig, LanguageTrainConfig
    from rnnedge.training.train_lm import train_language_model

    metrics = train_language_model(
        LanguageModelConfig(cell=cell, vocab_size=len(corpus.vocabulary), hidden_size=32, num_layers=1),
        LanguageTrainConfig(batch_size=8, num_steps=20, lr=0.5, max_steps=40, checkpoint_every=1000),
        out,
        corpus=corpus,
        quiet=True,
        threads=1,
    )
    assert metrics["test_perplexity"] > 1
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def text_files(ptb_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _write_corpus(ptb_data, tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def char_corpus(text_files: tuple[Path, Path, Path]) -> TextCorpus:
    return load_text_corpus(*text_files, tokens="chars")


@pytest.fixture(scope="module")
def char_checkpoint(char_corpus: TextCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(char_corpus, tmp_path_factory.mktemp("char-run"))


@pytest.fixture(scope="module")
def char_onnx(char_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rnnedge.export.exporter import export_checkpoint

    return export_checkpoint(char_checkpoint, tmp_path_factory.mktemp("char-onnx") / "char.onnx").path


@pytest.fixture(scope="module")
def word_onnx(text_files: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rnnedge.export.exporter import export_checkpoint

    corpus = load_text_corpus(*text_files, max_vocab=300, min_count=2)
    ckpt = _train(corpus, tmp_path_factory.mktemp("word-run"))
    return export_checkpoint(ckpt, tmp_path_factory.mktemp("word-onnx") / "word.onnx").path


@pytest.fixture(scope="module")
def chars(char_onnx: Path) -> Iterator[LanguageModel]:
    with load_language_model(char_onnx, threads=1) as model:
        yield model


def _metadata(path: Path) -> dict:
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[METADATA_KEY])


def test_a_character_file_says_chars_and_a_word_file_words(char_onnx: Path, word_onnx: Path) -> None:
    meta = _metadata(char_onnx)
    assert meta["format_version"] == 1 and meta["tokens"] == "chars"
    assert "€" in meta["vocabulary"] and "Ç" in meta["vocabulary"] and "\r" not in meta["vocabulary"]
    assert math.isclose(meta["quality"]["test_bpc"], math.log2(meta["quality"]["test_perplexity"]))
    word = _metadata(word_onnx)
    assert word["format_version"] == 1 and word["tokens"] == "words" and "test_bpc" not in word["quality"]
    assert len(word["vocabulary"]) == 300


def test_perplexity_and_bits_per_character_equal_in_pytorch_and_the_runtime(
    chars: LanguageModel, char_corpus: TextCorpus, char_checkpoint: Path, text_files: tuple[Path, Path, Path]
) -> None:
    from rnnedge.training.checkpoint import load_checkpoint
    from rnnedge.training.kinds import build_from_checkpoint
    from rnnedge.training.train_lm import evaluate_perplexity

    ckpt = load_checkpoint(char_checkpoint)
    torch_ppl = evaluate_perplexity(build_from_checkpoint(ckpt), char_corpus.test, 1, 100)  # type: ignore[arg-type]
    runtime_ppl = chars.perplexity(text_files[2])
    assert runtime_ppl == pytest.approx(torch_ppl, rel=1e-5)
    assert runtime_ppl == pytest.approx(chars.metadata.quality["test_perplexity"], rel=1e-5)
    assert math.log2(runtime_ppl) == pytest.approx(ckpt["metrics"]["test_bpc"], rel=1e-5)
    # One tokeniser on both sides: the runtime reads the test file into the ids training scored.
    text = text_files[2].read_text(encoding="utf-8")
    assert chars.encode(chars.tokenize(text)).tolist() == char_corpus.test.tolist()


def test_a_stream_advances_by_characters(chars: LanguageModel) -> None:
    whole = chars.stream()
    probs = whole.feed("the cat\nsat")
    assert probs.shape == (chars.vocab_size,)
    one_by_one = chars.stream()
    for token in [*"the cat", "<eos>", *"sat"]:
        last = one_by_one.feed([token])
    np.testing.assert_allclose(last, probs, atol=1e-6)
    ids = chars.encode("a\r\nb")  # CRLF is one line end: one <eos>
    assert chars.decode(ids) == ["a", "<eos>", "b"]
    assert chars.encode("✈")[0] == chars.unk_id
    assert whole.top_k(3)[0][0] in chars.vocabulary


def test_generation_of_characters_is_seeded_and_joins_without_spaces(chars: LanguageModel) -> None:
    first = list(chars.generate("the ", max_words=40, seed=3, top_k=10))
    assert first == list(chars.generate("the ", max_words=40, seed=3, top_k=10))
    assert all(len(c) == 1 or c in ("<eos>", "<unk>") for c in first)
    text = chars.join(first)
    assert text == "".join("\n" if c == "<eos>" else c for c in first)


def test_word_streams_of_a_users_text_split_on_whitespace(word_onnx: Path) -> None:
    with load_language_model(word_onnx, threads=1) as words:
        assert words.tokens == "words"
        a = words.stream().feed("the company said")
        b = words.stream().feed(["the", "company", "said"])
        np.testing.assert_array_equal(a, b)
        assert words.join(list(words.generate(max_words=5, seed=1))).count("  ") == 0


def test_character_metadata_the_runtime_refuses(char_onnx: Path, tmp_path: Path) -> None:
    def edited(name: str, change: Callable[[dict], None]) -> Path:
        model = onnx.load(str(char_onnx))
        meta = _metadata(char_onnx)
        change(meta)
        for prop in model.metadata_props:
            if prop.key == METADATA_KEY:
                prop.value = json.dumps(meta)
        path = tmp_path / name
        onnx.save(model, str(path))
        return path

    with pytest.raises(ModelFileError, match="tokens is missing: a language model's metadata must carry it"):
        load(edited("no-tokens.onnx", lambda m: m.pop("tokens")))
    with pytest.raises(ModelFileError, match="tokens is 'bytes', expected one of"):
        load(edited("bytes.onnx", lambda m: m.update(tokens="bytes")))

    def long_entry(m: dict) -> None:
        m["vocabulary"][m["vocabulary"].index("a")] = "ab"

    with pytest.raises(ModelFileError, match=r"must hold single characters besides <unk> and <eos>.*'ab'"):
        load(edited("long.onnx", long_entry))


def test_a_checkpoint_with_unknown_tokens_is_refused_at_export(char_checkpoint: Path, tmp_path: Path) -> None:
    import torch

    from rnnedge.export.exporter import export_checkpoint

    ckpt = torch.load(char_checkpoint, weights_only=True)
    ckpt["tokens"] = "bytes"
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="tokens must be 'words' or 'chars', got 'bytes'"):
        export_checkpoint(tmp_path / "bad.pt", tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_the_command_line_trains_and_reports_bits_per_character(
    text_files: tuple[Path, Path, Path], char_onnx: Path, chars: LanguageModel, tmp_path: Path
) -> None:
    runner = CliRunner()
    train, valid, test = (str(p) for p in text_files)
    args = ["train", "lm", "--train", train, "--valid", valid, "--test", test, "--tokens", "chars"]
    args += ["--hidden-size", "16", "--num-layers", "1", "--max-steps", "3", "--batch-size", "4", "--quiet"]
    result = runner.invoke(cli, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "test_bpc" in json.loads(result.output.strip().splitlines()[-1])
    result = runner.invoke(cli, ["perplexity", str(char_onnx), test, "--quiet"])
    assert result.exit_code == 0 and "bits per character" in result.output, result.output
    result = runner.invoke(cli, ["generate", str(char_onnx), "--max-words", "30", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip("\n") == chars.join(list(chars.generate(None, 30, seed=1))).rstrip("\n")
    result = runner.invoke(cli, ["next-word", str(char_onnx), "--k", "2"], input="ab\n")
    assert result.exit_code == 0 and [line.split(" -> ")[0] for line in result.output.splitlines()] == [
        "a",
        "b",
        "<eos>",
    ], result.output


def test_the_command_line_names_a_bad_text_file(text_files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"ok\nna\xefve\n")
    train, valid, _ = (str(p) for p in text_files)
    runner = CliRunner()
    args = ["train", "lm", "--train", train, "--valid", valid, "--test", str(bad), "--out", str(tmp_path / "r")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1 and "latin1.txt, line 2, column 3: byte 0xef is not UTF-8" in result.output
    result = runner.invoke(cli, ["train", "lm", "--train", train, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "missing --valid, --test" in result.output
    result = runner.invoke(cli, ["train", "lm", "--corpus", str(tmp_path), "--train", train, "--out", "x"])
    assert result.exit_code == 2 and "not both" in result.output
    result = runner.invoke(cli, ["train", "lm", "--corpus", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "holds none of train.txt, valid.txt, test.txt" in result.output
    result = runner.invoke(cli, [*args[:-2], "--max-vocab", "2", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--max-vocab" in result.output


def test_a_gru_language_model_exports_streams_and_scores_as_pytorch(
    char_corpus: TextCorpus, text_files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from rnnedge.export.exporter import export_model
    from rnnedge.training.checkpoint import load_checkpoint
    from rnnedge.training.kinds import build_from_checkpoint
    from rnnedge.training.train_lm import evaluate_perplexity

    ckpt_path = _train(char_corpus, tmp_path / "run", cell="gru")
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["kind"] == "language_model" and ckpt["config"]["cell"] == "gru" and set(ckpt["lm_state"]) == {"h"}
    outcomes = export_model(ckpt_path, tmp_path / "gru.onnx", variants=["int8"])
    assert [o.status for o in outcomes] == ["ok", "skipped"] and "no int8 GRU kernel" in outcomes[1].message
    graph = onnx.load(str(tmp_path / "gru.onnx")).graph
    assert [n.op_type for n in graph.node].count("GRU") == 1 and "LSTM" not in {n.op_type for n in graph.node}
    with load_language_model(tmp_path / "gru.onnx", threads=1) as gru:
        assert [s.name for s in gru.metadata.states] == ["h"] and gru.tokens == "chars"
        torch_ppl = evaluate_perplexity(build_from_checkpoint(ckpt), char_corpus.test, 1, 100)  # type: ignore[arg-type]
        assert gru.perplexity(text_files[2]) == pytest.approx(torch_ppl, rel=1e-5)
        whole, parts = gru.stream(), gru.stream()
        probs = whole.feed("the cat\nsat")
        parts.feed("the c")
        np.testing.assert_allclose(parts.feed("at\nsat"), probs, atol=1e-6)
        group = gru.stream_batch()
        group.add("a")
        np.testing.assert_allclose(group.feed({"a": "t"})["a"], gru.stream().feed("t"), atol=1e-6)
