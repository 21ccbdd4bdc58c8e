"""Stage 4: evaluate. A run folder's model on its test split: the report (accuracy, loss, per-class
scores, confusion matrix, calibration) in ``evaluation.json`` and the pictures beside it."""

from __future__ import annotations

from digitkit.classifier import KerasClassifier
from digitkit.files import atomic_write_json
from digitkit.report import save_report_figures, score
from digitkit.runs import Run


def evaluate_run(run_path, data_dir=None) -> tuple[Run, dict]:
    """Evaluate a run folder's model on its dataset's test split; writes evaluation.json and PNGs."""
    trained = KerasClassifier.load(run_path)
    run = trained.run
    images, labels = run.test_split(data_dir)
    probs = trained.predict(images)
    report = {"run": run.name, "model": run.config.get("model"), "dataset": trained.dataset,
              **score(probs, labels, trained.labels)}
    atomic_write_json(run.path / "evaluation.json", report)
    save_report_figures(run.path, images, labels, probs, trained.labels, report)
    return run, report
