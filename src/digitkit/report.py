"""What a model scores on a labelled set: accuracy, loss, per-class precision/recall/F1, confusion
matrix, calibration, and the pictures of them. Training writes these for its test split, and
``digitkit evaluate`` writes them again for a run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def classification_report(y_true, y_pred, class_names) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix, as plain JSON types."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    matrix = confusion_matrix(y_true, y_pred, len(class_names))
    true_pos = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(actual > 0, true_pos / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(actual[i])}
        for i, name in enumerate(class_names)
    }
    return {
        "accuracy": float(true_pos.sum() / max(len(y_true), 1)),
        "per_class": per_class,
        "macro_f1": float(f1.mean()),
        "confusion_matrix": matrix.tolist(),
    }


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy − confidence| over equal-width confidence bins, weighted by bin size (ECE)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if not len(labels):
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total / len(labels))


def score(probs: np.ndarray, labels: np.ndarray, class_names) -> dict:
    """The report for predicted probabilities (N, classes) against true labels (N,)."""
    probs, labels = np.asarray(probs), np.asarray(labels).astype(np.int64)
    pred = probs.argmax(axis=1)
    picked = probs[np.arange(len(pred)), labels]
    report = classification_report(labels, pred, list(class_names))
    return {
        "num_test": int(len(labels)),
        "test_accuracy": report.pop("accuracy"),
        "test_loss": float(-np.log(np.clip(picked, 1e-7, 1)).mean()) if len(labels) else 0.0,
        "expected_calibration_error": expected_calibration_error(probs, labels),
        **report,
    }


def confusion_matrix_path(folder: Path, suffix: str = "") -> Path:
    return Path(folder) / f"confusion_matrix{suffix}.png"


def save_report_figures(folder: Path, images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                        class_names, report: dict, history: list[dict] | None = None, suffix: str = "") -> None:
    """curves.png (with a history), confusion_matrix{suffix}.png and misclassified{suffix}.png."""
    from digitkit import plots

    folder = Path(folder)
    if history:
        plots.training_curves(history, folder / "curves.png")
    plots.confusion_matrix_figure(np.array(report["confusion_matrix"]), class_names, confusion_matrix_path(folder, suffix))
    plots.misclassified_grid(images, labels, probs, class_names, folder / f"misclassified{suffix}.png")
