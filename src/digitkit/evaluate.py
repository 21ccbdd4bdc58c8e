"""Stage 4: evaluation. Test accuracy and loss, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

import numpy as np

from digitkit.data import Dataset, load_dataset
from digitkit.runs import Run, atomic_write_json


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


def predict_dataset(model, images: np.ndarray) -> np.ndarray:
    """Probabilities (N, classes) for uint8 (N, 28, 28) images, computed on the training device."""
    from digitkit.train import device, predict_probs, to_tensor

    return predict_probs(model, to_tensor(images, device())).cpu().numpy()


def evaluate_model(model, data: Dataset) -> tuple[dict, np.ndarray]:
    """Evaluate on the dataset's test split (and only here is the test split used).

    Returns the report and the test-set probabilities (the pictures reuse them)."""
    probs = predict_dataset(model, data.x_test)
    pred = probs.argmax(axis=1)
    picked = probs[np.arange(len(pred)), data.y_test]
    report = classification_report(data.y_test, pred, data.class_names)
    return {
        "dataset": data.name,
        "num_test": int(len(data.y_test)),
        "test_accuracy": report.pop("accuracy"),
        "test_loss": float(-np.log(np.clip(picked, 1e-7, 1)).mean()),
        **report,
    }, probs


def save_report_figures(run: Run, data: Dataset, report: dict, probs: np.ndarray,
                        history: list[dict] | None = None) -> None:
    from digitkit import plots

    if history:
        plots.training_curves(history, run.path / "curves.png")
    plots.confusion_matrix_figure(np.array(report["confusion_matrix"]), data.class_names, run.path / "confusion_matrix.png")
    plots.misclassified_grid(data.x_test, data.y_test, probs, data.class_names, run.path / "misclassified.png")


def evaluate_run(run_path, data_dir=None) -> tuple[Run, dict]:
    """Evaluate a run folder's model on its dataset's test split; writes evaluation.json and PNGs."""
    run = Run.open(run_path)
    config = run.config
    data = load_dataset(config.get("dataset", "mnist"), data_dir or config.get("data_dir"))
    report, probs = evaluate_model(run.load_model(), data)
    report |= {"run": run.name, "model": config.get("model")}
    atomic_write_json(run.path / "evaluation.json", report)
    save_report_figures(run, data, report, probs)
    return run, report
