"""The validation rule's floor follows each quantity's scale; mismatches are typed and say how far over they are.

The fault these hold: a correctly trained row-LSTM (``rnnedge train mnist-lstm --epochs 1``) was
refused with ``state h_sum differs by up to 0.000377 (atol 0.0001, rtol 0.0001)``: a running sum of
60 LSTM outputs held to the tolerance of a probability. Here the exact result (and PyTorch-float32
with it) is shifted by a controlled amount, so each case is exact and needs no long training run.
``test_export_judged_exactly.py`` holds the rule on real models, valid and broken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnnedge.cli.main import cli
from rnnedge.export.exporter import Built, build_export, write_validated
from rnnedge.export.validate import MismatchKind, ParityError, Reference, Run, Tolerances
from rnnedge.training.checkpoint import load_checkpoint

PER_ROW = 1e-6  # the running sum drifts by this much per row summed: 6e-5 after 60 rows, under the floor of 60 rows


@pytest.fixture()
def built(tiny_checkpoint: Path) -> Built:
    return build_export(load_checkpoint(tiny_checkpoint))


def _shifted(reference: Reference, *, state: str = "", output: str = "", by: float = 0.0) -> Reference:
    """The reference, float32 and exact alike, with one state part (by ``by`` per step fed) or one output moved."""

    def moved(run: Run) -> Run:
        def shifted(x: np.ndarray, s: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
            outputs, new = run(x, s)
            if state:
                new = {**new, state: new[state] + by * x.shape[1]}
            if output:
                outputs = {**outputs, output: outputs[output] + by}
            return outputs, new

        return shifted

    return replace(reference, run=moved(reference.run), exact=moved(reference.exact))


def test_a_running_sum_is_held_to_its_own_scale(built: Built, tmp_path: Path) -> None:
    drifting = _shifted(built.reference, state="h_sum", by=PER_ROW)  # 6e-5 after 60 rows: 1e-6 a row
    result = write_validated(built.graph, built.metadata, drifting, tmp_path / "model.onnx")
    assert result.path.is_file()
    assert 5e-5 < result.parity.max_abs_diff["state h_sum"] < 7e-5  # 30x the floor of a probability
    assert result.parity.margin < 1  # and inside the floor of a sum of 60 rows
    wrong = _shifted(built.reference, output="probs", by=6e-5)  # the same difference in a probability
    with pytest.raises(ParityError, match="probs differs from the exact result by up to 6e-05"):
        write_validated(built.graph, built.metadata, wrong, tmp_path / "other.onnx")


def test_a_probability_off_by_a_little_is_refused_typed_and_measured(built: Built, tmp_path: Path) -> None:
    wrong = _shifted(built.reference, output="probs", by=0.01)
    with pytest.raises(ParityError) as info:
        write_validated(built.graph, built.metadata, wrong, tmp_path / "model.onnx")
    failures = info.value.failures
    assert {f.quantity for f in failures} == {"probs", "streamed probs", "padded probs"}
    assert {f.kind for f in failures} == {MismatchKind.VALUE, MismatchKind.STREAM}
    worst = max(failures, key=lambda f: f.over)
    assert worst.largest == pytest.approx(0.01, rel=1e-3) and worst.over > 1000
    message = str(info.value)
    assert "probs differs from the exact result by up to 0.01" in message and "x what is allowed" in message
    assert "x PyTorch float32's own distance" in message and "[stream vs whole]" in message
    assert not list(tmp_path.iterdir())


def test_a_wrong_shape_is_a_shape_mismatch(built: Built, tmp_path: Path) -> None:
    def cut(run: Run) -> Run:
        def shorter(x: np.ndarray, s: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
            outputs, new = run(x, s)
            return {**outputs, "logits": outputs["logits"][:, :-1]}, new

        return shorter

    base = built.reference
    wrong = replace(base, run=cut(base.run), exact=cut(base.exact))
    with pytest.raises(ParityError) as info:
        write_validated(built.graph, built.metadata, wrong, tmp_path / "model.onnx")
    shapes = [f for f in info.value.failures if f.kind is MismatchKind.SHAPE]
    assert shapes and all(f.quantity in ("logits", "streamed logits", "padded logits") for f in shapes)
    assert "the reference gives (1, 9)" in str(info.value)


def test_atol_overrides_every_quantity(built: Built, tmp_path: Path) -> None:
    drifting = _shifted(built.reference, state="h_sum", by=10 * PER_ROW)  # 6e-4 after 60 rows
    with pytest.raises(ParityError, match="state h_sum differs"):
        write_validated(built.graph, built.metadata, drifting, tmp_path / "a.onnx", Tolerances.absolute(1e-4))
    result = write_validated(built.graph, built.metadata, drifting, tmp_path / "b.onnx", Tolerances.absolute(1e-2))
    assert result.parity.tolerances.atol == 1e-2 and result.parity.as_dict()["tolerances"] == {
        "atol": 1e-2,
        "against": "PyTorch float64",
    }


def test_the_atol_option(tiny_checkpoint: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(tiny_checkpoint), "-o", str(tmp_path / "m.onnx"), "--atol", "1e-12"])
    assert result.exit_code == 1, result.output
    assert "ParityError" in result.output and "what is allowed" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.onnx").exists()
    for bad in ("0", "nan", "-1"):
        result = runner.invoke(cli, ["export", str(tiny_checkpoint), "-o", str(tmp_path / "m.onnx"), "--atol", bad])
        assert result.exit_code == 2 and "--atol" in result.output, result.output
