import numpy as np
import pytest

from digitkit.report import classification_report, confusion_matrix


def test_confusion_matrix_rows_are_truth():
    m = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_report_on_hand_made_example():
    # truth:      0 0 1 2 2 2     predicted: 0 1 1 2 2 0
    r = classification_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(4 / 6)
    a, b, c = r["per_class"]["a"], r["per_class"]["b"], r["per_class"]["c"]
    assert (a["precision"], a["recall"], a["support"]) == (pytest.approx(1 / 2), pytest.approx(1 / 2), 2)
    assert (b["precision"], b["recall"]) == (pytest.approx(1 / 2), 1.0)
    assert b["f1"] == pytest.approx(2 / 3)
    assert (c["precision"], c["recall"]) == (1.0, pytest.approx(2 / 3))
    assert c["f1"] == pytest.approx(0.8)
    assert r["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_class_never_predicted_nor_present_scores_zero_not_nan():
    r = classification_report([0, 0], [0, 0], ["a", "b"])
    assert r["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert not np.isnan(r["macro_f1"])
