"""Per-class precision, recall, F1 and the confusion matrix, against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rnnedge.runtime.errors import InputError
from rnnedge.runtime.evaluation import class_report


def test_the_report_of_a_small_case_equals_the_hand_computation() -> None:
    # 3 classes, 10 cases. By hand, rows true, columns predicted:
    #   a: 3 right, 1 taken for b        -> a row [3, 1, 0]
    #   b: 2 right, 1 taken for a         -> b row [1, 2, 0]
    #   c: 1 right, 1 taken for b, 1 for a -> c row [1, 1, 1]
    truth = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    predicted = [0, 0, 0, 1, 1, 1, 0, 2, 1, 0]
    report = class_report(truth, predicted, ["a", "b", "c"])
    assert report.confusion.tolist() == [[3, 1, 0], [1, 2, 0], [1, 1, 1]]
    # precision: a 3/(3+1+1) = 0.6, b 2/(1+2+1) = 0.5, c 1/1 = 1; recall: a 3/4, b 2/3, c 1/3
    assert report.precision.tolist() == pytest.approx([0.6, 0.5, 1.0])
    assert report.recall.tolist() == pytest.approx([0.75, 2 / 3, 1 / 3])
    # F1 = 2pr/(p+r): a 0.9/1.35 = 2/3, b (2/3)/(7/6) = 4/7, c (2/3)/(4/3) = 0.5
    assert report.f1.tolist() == pytest.approx([2 / 3, 4 / 7, 0.5])
    assert report.support.tolist() == [4, 3, 3] and report.accuracy == pytest.approx(0.6)
    d = report.as_dict()
    assert d["macro"]["f1"] == pytest.approx((2 / 3 + 4 / 7 + 0.5) / 3)
    assert d["classes"][1] == {
        "label": "b",
        "precision": 0.5,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(4 / 7),
        "support": 3,
    }
    table = report.table().splitlines()
    assert table[1].split() == ["a", "0.6000", "0.7500", "0.6667", "4"]
    assert table[-1].split() == ["accuracy", "0.6000", "10"]
    text = report.confusion_text().splitlines()  # short names head the columns as they head the rows
    assert text[0].split()[-3:] == ["a", "b", "c"] and text[3].split() == ["c", "1", "1", "1"]


def test_the_confusion_text_names_columns_as_the_rows_and_numbers_only_long_names() -> None:
    # labels that are numbers: column "0" must not stand for the class named "1"
    text = class_report(np.array([0, 1, 1]), np.array([0, 1, 0]), ["1", "2"]).confusion_text().splitlines()
    assert text[0].split() == ["true", "/", "predicted", "1", "2"]
    assert [line.split() for line in text[1:]] == [["1", "1", "0"], ["2", "1", "1"]]
    long = ["a class named at length", "another long class name"]
    text = class_report(np.array([0, 1]), np.array([1, 1]), long).confusion_text().splitlines()
    assert text[0].split()[-2:] == ["#0", "#1"] and text[1].split()[0] == "#0" and "a class named at length" in text[1]


def test_a_class_never_predicted_has_precision_zero_not_nan() -> None:
    report = class_report(np.array([0, 1, 1]), np.array([0, 0, 0]), ["x", "y"])
    assert report.precision.tolist() == [pytest.approx(1 / 3), 0.0] and report.f1[1] == 0.0
    assert np.isfinite(report.f1).all()


@pytest.mark.parametrize(
    ("truth", "predicted", "message"),
    [
        ([0, 1], [0], "of one shape"),
        ([0, 3], [0, 1], "true class ids must be integers in [0, 2)"),
        ([0, 1], [0.0, 1.0], "predicted class ids must be integers"),
        ([], [], "N >= 1"),
    ],
)
def test_bad_class_ids_are_refused_by_name(truth: list[float], predicted: list[float], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        class_report(np.array(truth), np.array(predicted), ["p", "q"])
