"""Stage 4: evaluate. A run folder's model on its test split, or on any labelled folder: the report
(accuracy, loss, per-class scores, confusion matrix, calibration) in ``evaluation.json`` (or
``evaluation-<folder>.json``) and the pictures beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.classifier import KerasClassifier
from digitkit.files import atomic_write_json
from digitkit.report import confusion_matrix_path, save_report_figures, score
from digitkit.runs import Run


def report_suffix(data=None) -> str:
    """What names a report's files: "" for the run's own test split, "-<folder>" for a labelled folder."""
    return "" if data is None else "-" + (Path(data).resolve().name or "data")


def report_files(run: Run, data=None) -> tuple[Path, Path]:
    """The report and its confusion matrix that :func:`evaluate_run` writes into the run."""
    suffix = report_suffix(data)
    return run.path / f"evaluation{suffix}.json", confusion_matrix_path(run.path, suffix)


def evaluate_run(run_path, data_dir=None, data=None) -> tuple[Run, dict]:
    """Evaluate a run folder's model on its dataset's test split, or on ``data`` (a folder of class
    subfolders named as the model's classes); writes the report and its pictures into the run."""
    trained = KerasClassifier.load(run_path)
    run = trained.run
    if data is None:
        images, labels = run.test_split(data_dir)
        source = trained.dataset
    else:
        images, labels = _labelled_for(trained, data)
        source = str(Path(data))
    suffix = report_suffix(data)
    probs = trained.predict(images)
    report = {"run": run.name, "model": run.config.get("model"), "dataset": source,
              **score(probs, labels, trained.labels)}
    atomic_write_json(report_files(run, data)[0], report)
    save_report_figures(run.path, images, labels, probs, trained.labels, report, suffix=suffix)
    return run, report


def _labelled_for(trained: KerasClassifier, folder) -> tuple[np.ndarray, np.ndarray]:
    """A labelled folder's images, with labels numbered as the model's classes."""
    from digitkit.data.folders import read_labelled

    images, labels, names, _ = read_labelled(folder)
    unknown = [n for n in names if n not in trained.labels]
    if unknown:
        raise DigitkitError(f"{folder}: class folder(s) {', '.join(unknown)} are not classes of the model "
                            f"({', '.join(trained.labels)})")
    index = np.array([trained.labels.index(n) for n in names])
    return images, index[labels]
