"""Stage 4: evaluate. A run folder's model on its test split: the report (accuracy, loss, per-class
scores, confusion matrix, calibration) in ``evaluation.json`` and the pictures beside it."""

from __future__ import annotations

from digitkit.classifier import KerasClassifier
from digitkit.data import load_dataset
from digitkit.files import atomic_write_json
from digitkit.report import save_report_figures, score
from digitkit.runs import Run


def evaluate_run(run_path, data_dir=None) -> tuple[Run, dict]:
    """Evaluate a run folder's model on its dataset's test split; writes evaluation.json and PNGs."""
    trained = KerasClassifier.load(run_path)
    run = trained.run
    data = load_dataset(trained.dataset, data_dir or run.config.get("data_dir"))
    probs = trained.predict(data.x_test)
    report = {"run": run.name, "model": run.config.get("model"), "dataset": data.name,
              **score(probs, data.y_test, trained.labels)}
    atomic_write_json(run.path / "evaluation.json", report)
    save_report_figures(run.path, data.x_test, data.y_test, probs, trained.labels, report)
    return run, report
