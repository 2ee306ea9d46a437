"""A user's own nn.Module exported, from inside the tests: the Python runtime gives the module's own outputs.

Modules written the way users write them (``own_modules.py``), untrained and briefly trained
on real data (JapaneseVowels frames, PTB words and characters), each exported with
``export_module`` and then run through the runtime: whole sequences, ragged batches and chunked
streams give the module's own ``forward``'s probabilities within 1e-4. The refusals each name
the submodule (``docs/bad_input.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export needs the train extra")

from own_modules import (  # noqa: E402
    CASES,
    CharGRU,
    LastStepLSTM,
    TimeMajorBiLSTM,
    VoiceActivityTagger,
    data_dir,
    forward_probs,
    module_case,
    vowels,
)
from torch import nn  # noqa: E402

from rnnedge.errors import ConfigError, InputError, UnsupportedModuleError  # noqa: E402
from rnnedge.export import export_module  # noqa: E402
from rnnedge.export.validate import ParityError  # noqa: E402
from rnnedge.runtime import ClassifierModel, LanguageModel, TaggerModel, load  # noqa: E402

ATOL = 1e-4  # probabilities


@pytest.fixture(scope="module", autouse=True)
def _real_data() -> None:
    if data_dir() is None:
        pytest.skip("JapaneseVowels and PTB not found: set RNNEDGE_DATA")


@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "trained"])
@pytest.mark.parametrize("name", list(CASES))
def test_the_runtime_gives_the_modules_own_outputs(name: str, trained: bool, tmp_path: Path) -> None:
    module, options = module_case(name, trained)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    result = export_module(module, tmp_path / f"{name}.onnx", **options)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())  # the user's module is untouched
    assert module.training is False and result.parity.margin < 1
    rng = np.random.default_rng(0)
    with load(result.path) as model:
        if options["task"] == "language-model":
            assert isinstance(model, LanguageModel)
            _check_language_model(model, module, options, rng)
        else:
            assert isinstance(model, (TaggerModel, ClassifierModel))
            _check_frames(model, module, options)


def _check_frames(model: Any, module: nn.Module, options: dict[str, Any]) -> None:
    sequences = vowels()[0][:12]
    tagger = options["task"] == "tagger"
    # whole sequences, one batch
    batch = np.stack([s[:7] for s in sequences])  # (12, 7, 12)
    want = forward_probs(module, batch, options)
    np.testing.assert_allclose(model.predict(batch), want, atol=ATOL, rtol=0)
    # a ragged batch: each what it gives alone
    ragged = model.predict(sequences)
    for s, got in zip(sequences, ragged, strict=True):
        alone = forward_probs(module, s[None], options)[0]
        np.testing.assert_allclose(got, alone, atol=ATOL, rtol=0)
    # a chunked stream: what the module gives on the prefix so far (a tagger: on each frame fed)
    stream = model.stream()
    whole = sequences[3]
    start = 0
    for size in (1, 4, 2, 7, 100):
        piece = whole[start : start + size]
        if not len(piece):
            break
        got = stream.feed(piece)
        start += len(piece)
        prefix = forward_probs(module, whole[None, :start], options)[0]
        np.testing.assert_allclose(got, prefix[start - len(piece) : start] if tagger else prefix, atol=ATOL, rtol=0)


def _check_language_model(model: LanguageModel, module: nn.Module, options: dict[str, Any], rng: Any) -> None:
    vocab = model.vocab_size
    ids = rng.integers(0, vocab, (4, 30), dtype=np.int64)
    outputs, _ = model.step(ids, model.init_state(4))
    np.testing.assert_allclose(outputs["next_probs"], forward_probs(module, ids, options), atol=ATOL, rtol=0)
    for length in (1, 9, 30):  # sequences of other lengths, each alone
        got = model.step(ids[:1, :length], model.init_state(1))[0]["next_probs"]
        np.testing.assert_allclose(got, forward_probs(module, ids[:1, :length], options), atol=ATOL, rtol=0)
    stream = model.stream()
    start = 0
    for size in (1, 5, 3, 21):
        got = stream.feed(ids[0, start : start + size])
        start += size
        np.testing.assert_allclose(got, forward_probs(module, ids[:1, :start], options)[0], atol=ATOL, rtol=0)
    assert model.perplexity_of_ids(ids[0]) > 1


# -- refusals ------------------------------------------------------------------------------------


class _Projected(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True, proj_size=3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: Any) -> Any:
        return self.fc(self.lstm(x)[0][:, -1])


class _CellLoop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(4, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: Any) -> Any:
        h = torch.zeros(x.shape[0], 8)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.fc(h)


class _NormBetween(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 8, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: Any) -> Any:
        return self.fc(self.norm(self.gru(x)[0]))


class _Bidirectional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 8, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(16, 2)

    def forward(self, x: Any) -> Any:
        return self.fc(self.rnn(x)[0])


class _Chain(nn.Module):
    """Two recurrent submodules, ``between`` (if any) applied between them."""

    def __init__(self, second: nn.Module, between: nn.Module | None = None) -> None:
        super().__init__()
        self.rnn1 = nn.LSTM(4, 8, batch_first=True)
        self.between = between if between is not None else nn.Dropout(0.1)
        self.rnn2 = second
        self.fc = nn.Linear(8 * (2 if getattr(second, "bidirectional", False) else 1), 2)

    def forward(self, x: Any) -> Any:
        return self.fc(self.rnn2(self.between(self.rnn1(x)[0]))[0])


class _Activation(nn.Module):
    """A functional ReLU in forward: invisible to the structure reader, caught by validation."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.relu(self.lstm(x)[0][:, -1]))


class _Softmaxed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: Any) -> Any:
        return self.fc(self.lstm(x)[0]).mean(1)  # the mean of per-step logits: not the mean head


@pytest.mark.parametrize(
    ("module", "task", "match"),
    [
        (_Projected(), "classifier", r"submodule 'lstm' is an nn.LSTM with proj_size=3"),
        (_CellLoop(), "classifier", r"submodule 'cell' is an nn.GRUCell, stepped by Python code"),
        (_NormBetween(), "tagger", r"submodule 'norm' is a layer of type LayerNorm, which export does not know"),
        (_Bidirectional(), "tagger", r"submodule 'rnn' is bidirectional: a tagger streams causally"),
        (LastStepLSTM(), "tagger", r"forward gave logits of shape \(2, 9\) for float32 frames of shape \(2, 5, 12\)"),
        (CharGRU(5), "classifier", r"the classifier task takes real-valued frames"),
        (
            _Chain(nn.GRU(6, 8, batch_first=True)),
            "tagger",
            r"submodule 'rnn2' is a recurrent layer taking 6 features per step, but 'rnn1' before it gives 8",
        ),
        (
            _Chain(nn.GRU(8, 8, batch_first=True), nn.LayerNorm(8)),
            "tagger",
            r"submodule 'between' is a layer of type LayerNorm, which export does not know",
        ),
        (
            _Chain(nn.GRU(8, 8, batch_first=True, bidirectional=True)),
            "tagger",
            r"submodule 'rnn2' is bidirectional: a tagger streams causally",
        ),
    ],
    ids=[
        "proj_size",
        "cell-loop",
        "layer-between",
        "bidirectional-tagger",
        "wrong-output-shape",
        "embedding",
        "chain-sizes",
        "layer-between-rnns",
        "bidirectional-in-chain",
    ],
)
def test_what_cannot_be_written_exactly_is_refused(module: nn.Module, task: str, match: str, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModuleError, match=match) as info:
        export_module(module, tmp_path / "m.onnx", task=task)
    assert isinstance(info.value, ConfigError)  # the error hierarchy: a setting the user can change
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module", [_Activation(), _Softmaxed()], ids=["relu-in-forward", "mean-of-logits"])
def test_a_forward_the_graph_does_not_compute_is_refused(module: nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ParityError, match="differs from the exact result") as info:
        export_module(module, tmp_path / "m.onnx", task="classifier", head="last")
    assert "forward computes something besides the layers export reads" in str(info.value).splitlines()[0]
    assert not list(tmp_path.iterdir())


class _TimeMajorTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 8)  # batch_first=False: forward takes (T, B, C)
        self.out = nn.Linear(8, 2)

    def forward(self, x: Any) -> Any:
        return self.out(self.gru(x)[0])


@pytest.mark.parametrize(
    ("module", "task", "time_major", "match"),
    [
        (_TimeMajorTagger(), "tagger", False, r"mixes the sequences of a batch.*pass --time-major"),
        (TimeMajorBiLSTM(), "classifier", False, r"shape \(5, 9\) .*if it takes \(T, B, \.\.\.\), pass --time-major"),
        (VoiceActivityTagger(), "tagger", True, r"mixes the sequences of a batch.*if it takes \(B, T, \.\.\.\), leave"),
    ],
    ids=["time-major-tagger-without-flag", "time-major-classifier-without-flag", "batch-first-with-flag"],
)
def test_a_forward_of_the_other_layout_is_refused_saying_which_flag(
    module: nn.Module, task: str, time_major: bool, match: str, tmp_path: Path
) -> None:
    """A module fed (B, T, C) that takes (T, B, C), or the reverse: the time-major flag named, not a parity report."""
    with pytest.raises(UnsupportedModuleError, match=match):
        export_module(module, tmp_path / "m.onnx", task=task, time_major=time_major)
    assert not list(tmp_path.iterdir())


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="task must be one of"):
        export_module(LastStepLSTM(), tmp_path / "m.onnx", task="regression")
    with pytest.raises(ConfigError, match=r"labels: 2 given, but the module's output layer has 9 outputs$"):
        export_module(LastStepLSTM(), tmp_path / "m.onnx", task="classifier", labels=["a", "b"])
    with pytest.raises(ConfigError, match="labels must be strings, got \\['int', 'int', 'int'\\]"):
        export_module(VoiceActivityTagger(), tmp_path / "m.onnx", task="tagger", labels=[0, 1, 2])
    with pytest.raises(ConfigError, match="head='mean' is for a classifier; a tagger gives an output at every step"):
        export_module(VoiceActivityTagger(), tmp_path / "m.onnx", task="tagger", head="mean")
    with pytest.raises(ConfigError, match="export_module needs task=, one of"):
        export_module(VoiceActivityTagger(), tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="unknown option\\(s\\) \\['lables'\\]; it takes \\['task', 'head', 'labels'"):
        export_module(VoiceActivityTagger(), tmp_path / "m.onnx", task="tagger", lables=["a", "b", "c"])
    with pytest.raises(ConfigError, match="lacks \\['<eos>'\\]"):
        export_module(CharGRU(3), tmp_path / "m.onnx", task="language-model", vocabulary=["<unk>", "a", "b"])
    with pytest.raises(ConfigError, match="needs its vocabulary"):
        export_module(CharGRU(3), tmp_path / "m.onnx", task="language-model")
    assert not list(tmp_path.iterdir())


# -- the JavaScript runtime ------------------------------------------------------------------------
JS_FIXTURES = Path(__file__).resolve().parents[2] / "js" / "test" / "fixtures" / "own"
JS_CHUNKS = (1, 4, 2, 7)


@pytest.mark.parametrize("name", list(CASES))
def test_js_fixtures_of_own_modules(name: str) -> None:
    """Writes ``js/test/fixtures/own/NAME.{onnx,json}``: ragged sequences, chunks, and the module's own outputs.

    ``js/test/own.test.js`` (``npm test``) asserts the JavaScript runtime gives them within 1e-4.
    """
    import json

    module, options = module_case(name, True)
    JS_FIXTURES.mkdir(parents=True, exist_ok=True)
    path = export_module(module, JS_FIXTURES / f"{name}.onnx", **options).path
    if options["task"] == "language-model":
        rng = np.random.default_rng(0)
        vocab = len(options["vocabulary"])
        sequences: list[np.ndarray] = [rng.integers(0, vocab, n, dtype=np.int64) for n in (20, 3, 11)]
    else:
        sequences = vowels()[0][:6]
    tagger = options["task"] == "tagger"
    whole = [forward_probs(module, s[None], options)[0] for s in sequences]  # (T, C) per frame, or (C,)
    stream, start = [], 0
    for size in JS_CHUNKS:
        start += size
        prefix = forward_probs(module, sequences[0][None, :start], options)[0]
        stream.append((prefix[start - size : start] if tagger else prefix).tolist())
    document = {
        "model": path.name,
        "task": options["task"],
        "sequences": [s.tolist() for s in sequences],
        "predict": [w.tolist() for w in whole],
        "chunks": list(JS_CHUNKS),
        "stream": stream,
    }
    (JS_FIXTURES / f"{name}.json").write_text(json.dumps(document))
    with load(path) as model:  # the Python runtime, on the same document
        for s, w in zip(sequences, whole, strict=True):
            got = model.stream().feed(s) if options["task"] == "language-model" else model.predict([s])[0]
            np.testing.assert_allclose(got, w, atol=ATOL, rtol=0)


def test_a_tagger_stream_takes_at_most_a_window_per_feed(tmp_path: Path) -> None:
    from rnnedge.runtime.model import STREAM_WINDOW

    module, options = module_case("gru2-tagger", False)
    with load(export_module(module, tmp_path / "t.onnx", **options).path) as model:
        stream = model.stream()
        first = stream.feed(np.zeros((3, 12)))
        with pytest.raises(InputError, match=f"at most {STREAM_WINDOW} frames per feed"):
            stream.feed(np.zeros((STREAM_WINDOW + 1, 12)))
        assert first.shape == (3, 3) and stream.last is not None and np.array_equal(stream.last, first)


def test_a_chain_of_lstms_gets_an_int8_variant_of_every_lstm_layer(tmp_path: Path) -> None:
    import onnx

    from rnnedge.export.quantize import quantize_int8

    module, options = module_case("lstm-lstm-last", True)
    path = export_module(module, tmp_path / "m.onnx", **options).path
    int8 = quantize_int8(path, tmp_path / "m.int8.onnx").path
    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    assert ops.count("DynamicQuantizeLSTM") == 2 and "LSTM" not in ops
    batch = np.stack([s[:7] for s in vowels()[0][:12]])
    with load(path) as exact, load(int8) as quantized:
        drift = float(np.abs(quantized.predict(batch) - exact.predict(batch)).max())
    assert drift < 0.05, f"int8 probabilities drift {drift:.3f} from float32's"


@pytest.mark.parametrize("name", ["lstm-gru2-tagger", "lstm-lstm-last", "bilstm-bigru-mean"])
def test_a_chains_network_is_read_from_its_metadata_and_shown(name: str, tmp_path: Path) -> None:
    """``bench``'s cost estimate counts every layer of every recurrent submodule: the file's own weights."""
    import onnx
    from click.testing import CliRunner
    from onnx import numpy_helper

    from rnnedge.bench.cost import weights_per_step
    from rnnedge.cli.main import cli

    module, options = module_case(name, False)
    path = export_module(module, tmp_path / "m.onnx", **options).path
    arrays = [numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer]
    with load(path) as model:
        assert weights_per_step(model.metadata) == sum(a.nbytes for a in arrays if a.dtype == np.float32)
    shown = CliRunner().invoke(cli, ["info", str(path)])  # each submodule said apart
    assert shown.exit_code == 0 and "rnns=[bidirectional=" in shown.output and "], [bidirectional=" in shown.output
