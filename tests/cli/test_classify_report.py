"""``rnnedge classify --report`` and batch export's per-class table, on a model trained on real data.

The numbers are checked against a count made here, case by case, from the runtime's own predictions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sequence_models import train_tiny_sequences, vowels

from rnnedge.cli.main import cli
from rnnedge.data.sequences import read_sequences
from rnnedge.runtime import load_classifier


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small JapaneseVowels LSTM (9 classes), trained a few epochs so that it makes some mistakes."""
    pytest.importorskip("torch", reason="training a model needs the train extra")
    from rnnedge.export.exporter import export_checkpoint

    root = tmp_path_factory.mktemp("report")
    checkpoint = train_tiny_sequences(root / "runs" / "vowels", epochs=2)
    export_checkpoint(checkpoint, root / "vowels.onnx")
    return root / "vowels.onnx"


def hand_counts(model_path: Path) -> tuple[list[str], list[tuple[int, int, int, int]]]:
    """Per class: (true positives, predicted as it, cases of it, all cases), counted one case at a time."""
    with load_classifier(model_path) as m:
        test = read_sequences(vowels("test"), class_names=m.labels)
        predicted = [int(np.argmax(m.predict([s])[0])) for s in test.sequences]
        labels = list(m.labels)
    counts = []
    for c in range(len(labels)):
        tp = sum(1 for t, p in zip(test.labels, predicted, strict=True) if t == c and p == c)
        counts.append((tp, predicted.count(c), int((test.labels == c).sum()), len(predicted)))
    return labels, counts


def test_classify_report_prints_per_class_numbers_and_the_confusion_matrix(model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["classify", str(model), "--test", str(vowels("test")), "--report", "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    labels, counts = hand_counts(model)
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["class", "precision"]) + 1
    rows = {line.split()[0]: line.split()[1:] for line in lines[start : start + len(labels)]}
    for name, (tp, predicted, support, _) in zip(labels, counts, strict=True):
        precision = tp / predicted if predicted else 0.0
        recall = tp / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert rows[name] == [f"{precision:.4f}", f"{recall:.4f}", f"{f1:.4f}", str(support)], name
    correct = sum(c[0] for c in counts)
    assert f"test accuracy {correct / 370:.4f}" in lines[0]
    assert any(line.split() == ["accuracy", f"{correct / 370:.4f}", "370"] for line in lines)
    head = next(i for i, line in enumerate(lines) if line.startswith("true / predicted"))
    assert lines[head].split()[3:] == labels  # the columns named as the rows ("1".."9", not "0".."8")
    matrix = [line.split() for line in lines[head + 1 : head + 1 + len(labels)]]
    assert [row[0] for row in matrix] == labels
    confusion = [row[1:] for row in matrix]
    assert len(confusion) == 9 and sum(int(confusion[i][i]) for i in range(9)) == correct
    assert [sum(int(v) for v in row) for row in confusion] == [c[2] for c in counts]

    as_json = json.loads(CliRunner().invoke(cli, ["classify", str(model), "--json", "--quiet"]).output)
    assert as_json["accuracy"] == pytest.approx(correct / 370) and len(as_json["confusion"]) == 9


def test_report_png_is_drawn_with_the_plot_extra_and_refused_for_another_suffix(model: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the PNG needs the plot extra")
    png = tmp_path / "confusion.png"
    result = CliRunner().invoke(cli, ["classify", str(model), "--report-png", str(png), "--quiet"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(cli, ["classify", str(model), "--report-png", str(tmp_path / "c.jpg")])
    assert bad.exit_code == 2 and "give a path ending in .png" in bad.output and not (tmp_path / "c.jpg").exists()


def test_report_png_without_matplotlib_names_the_extra(model: Path, tmp_path: Path) -> None:
    code = "import sys; sys.modules['matplotlib'] = None; from rnnedge.cli.main import cli; cli()"
    args = ["classify", str(model), "--report-png", str(tmp_path / "c.png"), "--quiet"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "pip install 'rnnedge[plot]'" in done.stderr and "Traceback" not in done.stderr


def test_batch_export_report_carries_the_per_class_table(model: Path, tmp_path: Path) -> None:
    from rnnedge.export.batch import export_many

    runs = model.parent / "runs"
    summary = export_many([runs], tmp_path / "dist")
    entry = summary.entries[0]
    assert entry["status"] == "ok"
    labels, counts = hand_counts(tmp_path / "dist" / "vowels.onnx")
    assert [c["support"] for c in entry["classes"]["classes"]] == [c[2] for c in counts]
    report = (tmp_path / "dist" / "report.md").read_text()
    assert "## vowels (float32): per class, on its test file" in report
    for name, (tp, _, support, _) in zip(labels, counts, strict=True):
        assert (
            f"| {name} | " in report
            and f"| {tp / support:.4f} | " in report.split(f"| {name} | ", 1)[1].split("\n")[0] + " "
        )
    manifest = json.loads((tmp_path / "dist" / "manifest.json").read_text())
    assert manifest["models"][0]["classes"]["confusion"] == entry["classes"]["confusion"]
