"""Fixtures for the JavaScript runtime (js/): tiny real models and what the Python runtime answers.

Writes ``js/test/fixtures/`` (git-ignored): the exported files of every kind the runtime
serves (causal and bidirectional classifiers, a word language model, and an int8 variant of
each causal kind), a GRU classifier of a user's sequences and a character model, and one
JSON file per model with inputs and the Python runtime's outputs:
batch predictions, row-by-row and chunked streams, states saved and restored, next-word
probabilities, top-k, greedy and seeded generation and perplexity. ``npm test`` in js/ reads them and asserts the
JavaScript runtime agrees to 1e-4 (and gives the same words). Run alone with
``python -m pytest tests/export/test_js_fixtures.py``; ``make test-js`` does when they are missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnedge.runtime import ClassifierModel, LanguageModel, load

OUT = Path(__file__).resolve().parents[2] / "js" / "test" / "fixtures"
DIGITS = 4  # real MNIST test images per classifier fixture
CHUNKS = (5, 1, 10, 12)  # rows per feed in the chunked stream: 28 rows in all
PROMPT = "the company said"
# Whitespace that Python's str.split() splits on, and some that it does not (U+FEFF, U+200B).
TRICKY_TEXT = "the\u00a0stock\tmarket\u2003rose\x1cin\u3000tokyo\x85today xyzzy\ufeffnew\u200byork\r\n"


def _array(a: np.ndarray) -> dict[str, Any]:
    return {"dtype": str(a.dtype), "dims": list(a.shape), "data": a.ravel().tolist()}


def _state(state: Any) -> dict[str, Any]:
    return {name: _array(np.asarray(a)) for name, a in state.arrays.items()}


def _metadata(path: Path) -> dict[str, Any]:
    from rnnedge.runtime import read_metadata

    parsed: dict[str, Any] = json.loads(read_metadata(path).to_json())
    return parsed


def _classifier_cases(model: ClassifierModel, images: np.ndarray) -> dict[str, Any]:
    """images: (DIGITS, 28, 28) uint8."""
    cases: dict[str, Any] = {
        "images": _array(images),
        "predict": _array(model.predict(images)),  # (N, 10)
        "predict_float": _array(model.predict(images.astype(np.float64) / 255.0)),
        "predict_prefix": _array(model.predict(images[:, :9])),  # the first 9 rows only
    }
    rows = []
    for image in images[:2]:
        stream = model.stream()
        rows.append([stream.feed(row).tolist() for row in image])  # (28, 10) per image
    cases["stream_rows"] = rows
    stream, chunked, lo = model.stream(), [], 0
    for n in CHUNKS:
        chunked.append(stream.feed(images[0, lo : lo + n]).tolist())
        lo += n
    cases["chunks"] = {"sizes": list(CHUNKS), "probs": chunked}
    stream = model.stream()
    stream.feed(images[1, :10])
    saved = stream.state
    after = [stream.feed(row).tolist() for row in images[1, 10:]]
    cases["state"] = {"image": 1, "rows": 10, "saved": _state(saved), "after": after}
    x = model.preprocess(images[:2, :7])  # (2, 7, 28) float32, the graph's input
    outputs, state = model.step(x, model.init_state(2))
    cases["step"] = {
        "x": _array(x),
        "outputs": {k: _array(v) for k, v in outputs.items()},
        "state": _state(state),
    }
    return cases


def _sentence(lm: LanguageModel, words: list[str]) -> dict[str, Any]:
    """A sentence typed word by word after ``<eos>`` (as the demo page feeds it): probabilities and top 8."""
    stream = lm.stream()
    start = stream.feed("<eos>")
    steps = [{"probs": start.tolist(), "top": [w for w, _ in stream.top_k(8)]}]
    for word in words:
        probs = stream.feed(word)
        steps.append({"probs": probs.tolist(), "top": [w for w, _ in stream.top_k(8)]})
    return {"words": words, "steps": steps}


def _lm_cases(lm: LanguageModel, sentence: list[str], text: str) -> dict[str, Any]:
    stream = lm.stream()
    probs = stream.feed(PROMPT)
    cases: dict[str, Any] = {
        "prompt": PROMPT,
        "encode": {"text": TRICKY_TEXT, "ids": lm.encode(TRICKY_TEXT).tolist()},
        "after_prompt": probs.tolist(),
        "top_k": [[w, p] for w, p in stream.top_k(5)],
        "saved": _state(stream.state),
    }
    cases["after_it"] = stream.feed("it").tolist()
    cases["top_k_after_it"] = [[w, p] for w, p in stream.top_k(10)]
    word_by_word = lm.stream()
    cases["word_by_word"] = [word_by_word.feed(w).tolist() for w in ["the", "stock", "market"]]
    ids = lm.encode("mr. <unk> is chairman of the board").tolist()
    cases["ids"] = {"ids": ids, "probs": lm.stream().feed(ids).tolist()}
    cases["greedy"] = {
        "prompt": PROMPT,
        "max_words": 12,
        "words": list(lm.generate(PROMPT, max_words=12, top_k=1, seed=0)),
        "from_start": list(lm.generate(None, max_words=8, top_k=1, seed=0)),
    }
    # The one sampler (docs/metadata.md, section 5): the JavaScript runtime must draw these words for this seed.
    cases["sampled"] = {
        "prompt": PROMPT,
        "max_words": 30,
        "top_k": 50,
        "seed": 1,
        "words": list(lm.generate(PROMPT, max_words=30, top_k=50, seed=1)),
    }
    cases["sentence"] = _sentence(lm, sentence)
    cases["perplexity"] = {"text": text, "window": 7, "value": lm.perplexity(text, window=7)}
    return cases


def _sequence_cases(model: ClassifierModel, sequences: list[np.ndarray]) -> dict[str, Any]:
    """A classifier of a user's sequences (lengths, standardize): raw float values in, of different lengths."""
    stream = model.stream()
    rows = [stream.feed(row).tolist() for row in sequences[0]]  # row by row
    stream, chunked, lo = model.stream(), [], 0
    for n in (3, 1, 5):
        chunked.append(stream.feed(sequences[1][lo : lo + n]).tolist())
        lo += n
    return {
        "sequences": [s.tolist() for s in sequences],
        "predict_list": model.predict(sequences).tolist(),  # different lengths: padded with lengths
        "stream_rows": rows,
        "chunks": {"sizes": [3, 1, 5], "probs": chunked},
    }


def _char_cases(lm: LanguageModel) -> dict[str, Any]:
    """A character model (tokens 'chars')."""
    text = "The END.\r\nÇa coûte"
    stream = lm.stream()
    probs = stream.feed(text)
    return {
        "text": text,
        "ids": lm.encode(text).tolist(),
        "probs": probs.tolist(),
        "top_k": [[w, p] for w, p in stream.top_k(5)],
        "greedy": list(lm.generate("the ", max_words=15, top_k=1, seed=0)),
        "perplexity": {"text": CHAR_TEXT, "window": 9, "value": lm.perplexity(CHAR_TEXT, window=9)},
    }


CHAR_TEXT = "Ça coûte 3,50 € !\r\nThe END.\r\n\r\nno it was n't black monday\n"


def _version_2_models(ptb_data: Path, work: Path) -> tuple[Path, Path, Path]:
    """Tiny classifiers of JapaneseVowels (GRU, lengths, standardize; LSTM with a convolutional branch) and a
    tiny character model of PTB text."""
    from sequence_models import train_tiny_sequences

    from rnnedge.data.corpus import load_text_corpus
    from rnnedge.export.exporter import export_checkpoint
    from rnnedge.training.config import LanguageModelConfig, LanguageTrainConfig
    from rnnedge.training.train_lm import train_language_model

    seq = export_checkpoint(train_tiny_sequences(work / "seq-run", epochs=2, cell="gru"), work / "seq.onnx").path
    conv_run = train_tiny_sequences(work / "conv-run", epochs=2, conv_channels=4)
    conv = export_checkpoint(conv_run, work / "seq-conv.onnx").path
    files = []
    for split, lines in (("train", 300), ("valid", 30), ("test", 30)):
        text = (ptb_data / "ptb" / f"ptb.{split}.txt").read_text(encoding="utf-8").splitlines(keepends=True)
        path = work / f"{split}.txt"
        path.write_bytes(("".join(text[:lines]) + CHAR_TEXT).encode("utf-8"))
        files.append(path)
    corpus = load_text_corpus(*files, tokens="chars")
    train_language_model(
        LanguageModelConfig(vocab_size=len(corpus.vocabulary), hidden_size=32, num_layers=1),
        LanguageTrainConfig(batch_size=8, num_steps=20, lr=0.5, max_steps=40, checkpoint_every=1000),
        work / "char-run",
        corpus=corpus,
        quiet=True,
        threads=1,
    )
    chars = export_checkpoint(work / "char-run" / "checkpoint.pt", work / "chars.onnx").path
    return seq, conv, chars


def _write(name: str, onnx_path: Path, cases: dict[str, Any]) -> None:
    shutil.copyfile(onnx_path, OUT / f"{name}.onnx")
    doc = {"model": f"{name}.onnx", "metadata": _metadata(onnx_path), "cases": cases}
    (OUT / f"{name}.json").write_text(json.dumps(doc, separators=(",", ":")))


def test_write_js_fixtures(
    tiny_onnx: Path, tiny_bi_onnx: Path, tiny_lm_onnx: Path, mnist: Any, ptb_data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnx", reason="the int8 variants are made with the export extra")
    from rnnedge.export.quantize import quantize_int8

    OUT.mkdir(parents=True, exist_ok=True)
    images = np.ascontiguousarray(mnist.test_images[:DIGITS])  # (4, 28, 28) uint8
    clf_int8 = quantize_int8(tiny_onnx, tmp_path / "clf.int8.onnx").path
    lm_int8 = quantize_int8(tiny_lm_onnx, tmp_path / "lm.int8.onnx").path
    labels = mnist.test_labels[:DIGITS].tolist()
    classifiers = [("clf", tiny_onnx), ("bi", tiny_bi_onnx), ("clf-int8", clf_int8)]
    for name, path in classifiers:
        with load(path, threads=1) as model:
            assert isinstance(model, ClassifierModel)
            cases = _classifier_cases(model, images)
            cases["labels"] = labels
            _write(name, path, cases)
    # The first sentence of PTB's test set: what the browser test types into the demo page.
    lines = (ptb_data / "ptb" / "ptb.test.txt").read_text(encoding="utf-8").splitlines()
    sentence = lines[0].split()
    text = "\n".join(lines[:20]) + "\n"  # perplexity of PTB's first 20 test lines
    for name, path in (("lm", tiny_lm_onnx), ("lm-int8", lm_int8)):
        with load(path, threads=1) as lm:
            assert isinstance(lm, LanguageModel)
            _write(name, path, _lm_cases(lm, sentence, text))
    seq, conv, chars = _version_2_models(ptb_data, tmp_path)
    from sequence_models import vowels

    from rnnedge.data.sequences import read_sequences

    test_set = read_sequences(vowels("test"))
    sequences = [np.asarray(s, dtype=np.float64) for s in test_set.sequences[:4]]  # real, of different lengths
    assert len({len(s) for s in sequences}) > 1
    for name, path in (("seq", seq), ("seq-conv", conv)):
        with load(path, threads=1) as model:
            assert isinstance(model, ClassifierModel) and model.metadata.lengths and model.metadata.standardize
            _write(name, path, _sequence_cases(model, sequences))
    with load(chars, threads=1) as lm:
        assert isinstance(lm, LanguageModel) and lm.metadata.tokens == "chars"
        _write("chars", chars, _char_cases(lm))
    models = ["clf", "bi", "clf-int8", "lm", "lm-int8", "seq", "seq-conv", "chars"]
    index = {"written_by": "tests/export/test_js_fixtures.py", "models": models}
    (OUT / "index.json").write_text(json.dumps(index, indent=1))
    assert all((OUT / f"{m}.json").is_file() for m in index["models"])
