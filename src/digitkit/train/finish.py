"""After the last epoch: the best epoch's model, calibrated, averaged over shifts if the recipe says
so, in its portable form; its test scores, pictures and metrics, each step timed."""

from __future__ import annotations

import contextlib
import importlib
import threading
import time

import numpy as np
import torch

from digitkit.files import atomic_path, atomic_write_json
from digitkit.inference import predict_probs, to_tensor
from digitkit.models import SHIFTS, fold_temperature, portable, shift_averaged, shift_images
from digitkit.report import save_report_figures, score
from digitkit.runs import MODEL_FILE, Run, load_keras_model
from digitkit.train.calibrate import apply_temperature, fit_temperature
from digitkit.train.precision import training_arithmetic
from digitkit.train.state import Session
from digitkit.train.twin import TrainingTwin
from digitkit.ui import console


class Clock:
    """Seconds spent in each named step, added to ``seconds``."""

    def __init__(self, seconds: dict):
        self.seconds = seconds

    @contextlib.contextmanager
    def __call__(self, step: str):
        started = time.perf_counter()
        yield
        self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - started


def finish(run: Run, session: Session, history: list[dict], quiet: bool, seconds: dict) -> None:
    """The best epoch's model, calibrated and in its portable form; its test scores and pictures."""
    config, data, sets, dev = session.config, session.data, session.sets, session.dev
    clock = Clock(seconds)
    best_epoch = int(np.argmin([h[session.monitor] for h in history])) + 1
    with clock("model"):
        # The best epoch's answers come from its training form through the twin: the same numbers
        # as the portable model's, several times sooner than Keras' own call path. The model in
        # memory is the checkpoint's when the last epoch was the best (and no average was saved).
        if best_epoch == len(history) and session.average is None:
            trained, twin = session.model, session.twin
        else:
            trained = load_keras_model(run.path / "checkpoint.keras")
            twin = TrainingTwin(trained)
        best = portable(trained)
        (run.path / "checkpoint.keras").unlink()
    temperature = None
    # The saved model answers with the average over these shifts of the calibrated network's answers.
    shifts = SHIFTS if config.shift_average else SHIFTS[:1]
    if config.calibrate and session.validate:
        with clock("calibration"):
            calibration = sets.x_valid[torch.as_tensor(sets.calibration, device=sets.x_valid.device)]
            val_probs = np.stack([predict_probs(twin, shift_images(calibration, dy, dx)).cpu().numpy()
                                  for dy, dx in shifts])
            temperature = fit_temperature(val_probs, sets.y_val_numpy[sets.calibration])
            fold_temperature(best, temperature)
    with clock("model"):
        with atomic_path(run.path / MODEL_FILE) as tmp:
            (shift_averaged(best) if config.shift_average else best).save(tmp)
        atomic_write_json(run.path / "history.json", history)
    # matplotlib's import (0.6 s, a twentieth of a fast run) goes on beside the test pass, whose
    # torch kernels release the GIL; the pictures then find it imported.
    threading.Thread(target=_import_quietly, args=("digitkit.plots",), daemon=True).start()
    with clock("test"):
        probs = 0
        for dy, dx in shifts:  # what the saved model answers: T folded in, shifts averaged
            shifted = predict_probs(twin, to_tensor(shift_images(data.x_test, dy, dx), dev)).cpu().numpy()
            probs = probs + (shifted if temperature is None else apply_temperature(shifted, temperature))
        probs = (probs / len(shifts)).astype(np.float32)
        report = {"dataset": data.name, **score(probs, data.y_test, data.class_names)}
    with clock("pictures"):
        save_report_figures(run.path, data.x_test, data.y_test, probs, data.class_names, report, history)
    metrics = report | {
        "temperature": temperature,
        "model": config.model,
        "parameters": int(best.count_params()),
        "shift_average": config.shift_average,
        "train_seconds": round(seconds["training"], 2),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "device": dev.type,
        "arithmetic": training_arithmetic(dev, config.precision),
        # Where the run's time went, step by step (docs/benchmarks.md's start-up table).
        "seconds": {step: round(value, 2) for step, value in seconds.items()},
    }
    atomic_write_json(run.path / "metrics.json", metrics)
    if not quiet:
        console.print(
            f"Test accuracy [bold]{metrics['test_accuracy']:.2%}[/] (loss {metrics['test_loss']:.4f}); "
            f"{seconds['training']:.1f} s of training."
        )


def _import_quietly(module: str) -> None:
    with contextlib.suppress(Exception):  # a failing import fails again, and is reported, where it is used
        importlib.import_module(module)
