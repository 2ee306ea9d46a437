"""``rnnedge export --module FILE.py:NAME --weights W.pt --task ...`` and ``--modules M.json``: a user's files in,
validated files out, the refusals as one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch", reason="export needs the train extra")

from rnnedge.cli.main import cli  # noqa: E402
from rnnedge.runtime import TaggerModel, load  # noqa: E402

USER_FILE = """
import torch
from torch import nn


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8, num_layers=2, batch_first=True)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.lstm(x)[0])


def word_model():
    model = nn.Module()
    model.embed = nn.Embedding(6, 4)
    model.rnn = nn.GRU(4, 4, batch_first=True)
    model.head = nn.Linear(4, 6)
    model.forward = lambda ids: model.head(model.rnn(model.embed(ids))[0])
    return model
"""


@pytest.fixture()
def user_files(tmp_path: Path) -> Path:
    (tmp_path / "models.py").write_text(USER_FILE)
    namespace: dict[str, object] = {}
    exec(USER_FILE, namespace)
    torch.manual_seed(0)
    torch.save(namespace["Tagger"]().state_dict(), tmp_path / "tagger.pt")  # type: ignore[operator]
    torch.save(namespace["word_model"]().state_dict(), tmp_path / "words.pt")  # type: ignore[operator]
    (tmp_path / "vocab.txt").write_text("<unk>\n<eos>\nthe\ncat\nsat\ndown\n")
    return tmp_path


def test_export_a_module_then_info_and_int8(user_files: Path) -> None:
    runner = CliRunner()
    out = user_files / "dist" / "tagger.onnx"
    args = ["export", "--module", f"{user_files / 'models.py'}:Tagger", "--weights", str(user_files / "tagger.pt")]
    args += ["--task", "tagger", "--labels", "quiet,speech", "-o", str(out), "--quantize", "int8"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "parity with PyTorch" in result.output and out.with_suffix(".int8.onnx").is_file()
    with load(out) as model:
        assert isinstance(model, TaggerModel) and model.labels == ("quiet", "speech")
    info = runner.invoke(cli, ["info", str(out), "--json"])
    assert info.exit_code == 0, info.output
    described = json.loads(info.output)
    assert described["kind"] == "tagger" and [s["input"] for s in described["state"]] == ["h", "c"]


def test_a_manifest_of_modules(user_files: Path) -> None:
    manifest = user_files / "modules.json"
    manifest.write_text(
        json.dumps(
            {
                "models": [
                    {"name": "vad", "module": "models.py:Tagger", "weights": "tagger.pt", "task": "tagger"},
                    {
                        "name": "words",
                        "module": "models.py:word_model",
                        "weights": "words.pt",
                        "task": "language-model",
                        "vocabulary": "vocab.txt",
                    },
                    {"name": "broken", "module": "models.py:Tagger", "weights": "words.pt", "task": "tagger"},
                ]
            }
        )
    )
    dist = user_files / "dist"
    result = CliRunner().invoke(cli, ["export", "--modules", str(manifest), "-o", str(dist)])
    assert result.exit_code == 1, result.output  # one failed; the others were written
    assert "1 of 3 exports failed" in result.output and "does not fit Tagger()" in result.output
    listed = json.loads((dist / "manifest.json").read_text())["models"]
    assert [(e["name"], e["status"]) for e in listed] == [("vad", "ok"), ("words", "ok"), ("broken", "failed")]
    assert listed[1]["kind"] == "language_model" and len(listed[0]["sha256"]) == 64
    assert sorted(p.name for p in dist.iterdir()) == ["manifest.json", "vad.onnx", "words.onnx"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--module", "models.py", "--task", "tagger"], "--module takes FILE.py:NAME"),
        (["--module", "{dir}/models.py:Nothing", "--task", "tagger"], "defines no class or function named 'Nothing'"),
        (["--module", "{dir}/models.py:Tagger"], "--module needs --task"),
        (
            ["--module", "{dir}/models.py:Tagger", "--weights", "{dir}/words.pt", "--task", "tagger"],
            "does not fit Tagger()",
        ),
        (["--module", "{dir}/models.py:word_model", "--task", "language-model"], "needs its vocabulary"),
        (["--module", "{dir}/models.py:Tagger", "--task", "tagger", "{dir}/tagger.pt"], "not both"),
    ],
    ids=["no-name", "missing-name", "no-task", "weights-mismatch", "no-vocabulary", "sources-too"],
)
def test_refused_on_the_command_line(user_files: Path, extra: list[str], message: str) -> None:
    args = [a.format(dir=user_files) for a in extra]
    result = CliRunner().invoke(cli, ["export", *args, "-o", str(user_files / "m.onnx")])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not (user_files / "m.onnx").exists()


def test_a_training_checkpoint_holding_one_state_dict_is_read(user_files: Path) -> None:
    """``{"model": state_dict, "optimizer": ..., "step": ...}``, as training scripts save it: the module's weights."""
    namespace: dict[str, object] = {}
    exec(USER_FILE, namespace)
    tagger = namespace["Tagger"]()  # type: ignore[operator]
    optimiser = torch.optim.Adam(tagger.parameters())
    checkpoint = {"model": tagger.state_dict(), "optimizer": optimiser.state_dict(), "step": 30}
    torch.save(checkpoint, user_files / "checkpoint.pt")
    out = user_files / "tagger.onnx"
    args = ["export", "--module", f"{user_files / 'models.py'}:Tagger", "--weights", str(user_files / "checkpoint.pt")]
    result = CliRunner().invoke(cli, [*args, "--task", "tagger", "-o", str(out)])
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(0).standard_normal((1, 9, 3)).astype(np.float32)
    with torch.no_grad():
        want = torch.softmax(tagger.eval()(torch.from_numpy(x)), -1).numpy()[0]
    np.testing.assert_allclose(load(out).predict([x[0]])[0], want, atol=1e-5)


@pytest.mark.parametrize(
    ("saved", "message"),
    [
        ("module", "holds a pickled rnnedge_test_models.Tagger, not a state_dict"),
        ("numpy", "is not a file written by torch.save"),
        ("two", "with several state_dicts ('model', 'ema')"),
        ("list", "holds a list, not a state_dict"),
    ],
)
def test_weights_that_are_not_a_state_dict_are_named_with_what_to_save(
    user_files: Path, monkeypatch: pytest.MonkeyPatch, saved: str, message: str
) -> None:
    """A whole pickled module, another format, or an ambiguous checkpoint: what the file holds and what to save instead,
    never torch's advice to load with weights_only=False."""
    import sys

    namespace: dict[str, object] = {"__name__": "rnnedge_test_models"}
    exec(USER_FILE, namespace)
    tagger = namespace["Tagger"]()  # type: ignore[operator]
    weights = user_files / "weights.pt"
    if saved == "module":
        module = type(sys)("rnnedge_test_models")
        module.__dict__.update(namespace)
        monkeypatch.setitem(sys.modules, "rnnedge_test_models", module)
        torch.save(tagger, weights)
    elif saved == "numpy":
        np.save(user_files / "weights.npy", np.zeros(3))
        weights = user_files / "weights.npy"
    elif saved == "two":
        torch.save({"model": tagger.state_dict(), "ema": tagger.state_dict()}, weights)
    else:
        torch.save([tagger.state_dict()], weights)
    args = ["export", "--module", f"{user_files / 'models.py'}:Tagger", "--weights", str(weights), "--task", "tagger"]
    result = CliRunner().invoke(cli, [*args, "-o", str(user_files / "m.onnx")])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "torch.save(model.state_dict(), PATH)" in result.output
    assert "weights_only` set to `False" not in result.output and "Traceback" not in result.output
    assert not (user_files / "m.onnx").exists()
