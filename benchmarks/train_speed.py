"""Time-to-accuracy of digitkit's presets against the tutorial as its readers run it, in one process.

The tutorial, as written: its model in plain Keras (channels-last, standard layers), one-hot labels,
`compile(loss="categorical_crossentropy", optimizer="adam")` and `fit(batch_size=200, epochs=10)`
with the test set as validation data and its two callbacks (best checkpoint, early stopping).
Its clock runs over `fit` minus the validation passes (its test accuracy is read from them).

Each digitkit preset: `digitkit.train.train` (MNIST, 55k train / 5k validation plus the synthetic
handwriting in its recipe); MNIST test accuracy measured after every epoch outside the timed loop.

For each: training seconds to first reach 99.0% and 99.5% test accuracy, the final test accuracy
(the saved model), and the ratio of each time to the tutorial's. Timings on these machines vary by
±30% between runs and machines; the ratios, measured in one process, are what to compare.

    python benchmarks/train_speed.py                            # tutorial + every preset
    python benchmarks/train_speed.py --recipes tutorial fast    # some of them
    python benchmarks/train_speed.py --json results.json
    python benchmarks/train_speed.py --runs-dir runs/bench      # keep the runs (runs/bench/default, ...)
    python benchmarks/train_speed.py --recipes tutorial fast default --before 266e97c
                                     # + round 2's default vs this one, back to back, and both read
                                     #   benchmarks/real_handwriting.py (benchmarks/back_to_back.py)

Start-up (`digitkit train --preset fast` and `digitkit predict` from the shell): benchmarks/startup.py.

Works on CPU and CUDA (the device is printed).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import digitkit.models  # noqa: F401  (selects the torch backend before Keras loads)
import keras
import torch

from digitkit.data import load_dataset
from digitkit.inference import device, predict_images
from digitkit.models import tutorial
from digitkit.train import PRESETS, TrainConfig, train
from digitkit.train.precision import training_arithmetic

THRESHOLDS = (0.990, 0.995)


def tutorial_as_written(runs_dir: str, epochs: int = 10) -> dict:
    """The tutorial's notebook, step for step, on the torch backend."""
    data = load_dataset("mnist")
    x_train = data.x_train.reshape(-1, 28, 28, 1).astype("float32") / 255
    x_test = data.x_test.reshape(-1, 28, 28, 1).astype("float32") / 255
    y_train = keras.utils.to_categorical(data.y_train, 10)
    y_test = keras.utils.to_categorical(data.y_test, 10)
    keras.utils.set_random_seed(0)
    model = tutorial(10, "channels_last")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.curve, self.validating = [], 0.0

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_test_begin(self, logs=None):
            self.test_start = time.perf_counter()

        def on_test_end(self, logs=None):
            self.validating += time.perf_counter() - self.test_start

        def on_epoch_end(self, epoch, logs=None):
            self.curve.append((time.perf_counter() - self.start - self.validating, float(logs["val_accuracy"])))

    clock = Clock()
    checkpoint = str(Path(runs_dir) / "tutorial.keras")
    model.fit(x_train, y_train, batch_size=200, epochs=epochs, verbose=0, validation_data=(x_test, y_test),
              callbacks=[keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
                         keras.callbacks.EarlyStopping(monitor="val_loss", patience=3), clock])
    best = keras.saving.load_model(checkpoint)
    final = float((best.predict(x_test, batch_size=1000, verbose=0).argmax(1) == data.y_test).mean())
    return _row("tutorial as written", "tutorial", clock.curve, final)


def preset(recipe: str, seed: int, runs_dir: str) -> dict:
    test = load_dataset("mnist")
    curve: list[tuple[float, float]] = []

    def on_epoch_end(epoch, model, logs):
        probs = predict_images(model, test.x_test)
        curve.append((logs["seconds"], float((probs.argmax(1) == test.y_test).mean())))

    run = train(TrainConfig.from_preset(recipe, seed=seed, name=recipe, runs_dir=runs_dir, overwrite=True),
                on_epoch_end=on_epoch_end, quiet=True)
    metrics = json.loads((run.path / "metrics.json").read_text())
    return _row(recipe, metrics["model"], curve, metrics["test_accuracy"])


def _row(recipe: str, model: str, curve, final: float) -> dict:
    row = {"recipe": recipe, "model": model, "epochs": len(curve), "train_seconds": round(curve[-1][0], 2),
           "final_test_accuracy": final, "per_epoch": [{"seconds": round(s, 2), "test_accuracy": a} for s, a in curve]}
    for threshold in THRESHOLDS:
        reached = next((s for s, a in curve if a >= threshold), None)
        row[f"seconds_to_{threshold:.3f}"] = None if reached is None else round(reached, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["tutorial", "fast", "default", "best"],
                        choices=["tutorial", *PRESETS], help="'tutorial' is the tutorial as written")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--before", metavar="REV", help="also train this revision's default and this checkout's back "
                                                        "to back, and read both (benchmarks/back_to_back.py)")
    parser.add_argument("--runs-dir", help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
        f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    precision = training_arithmetic(dev)
    print(f"device: {name}; digitkit's training arithmetic: {precision}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs_dir or tmp
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        for recipe in args.recipes:
            rows.append(tutorial_as_written(runs_dir) if recipe == "tutorial" else preset(recipe, args.seed, runs_dir))
            print(json.dumps(rows[-1]), flush=True)
    compared = None
    if args.before:
        sys.path.insert(0, str(Path(__file__).parent))
        import back_to_back

        compared = back_to_back.compare(args.before, args.runs_dir and str(Path(args.runs_dir) / "back-to-back"))

    base = next((r for r in rows if r["recipe"] == "tutorial as written"), None)

    def ratio(row, key):
        if base is None or row[key] is None or base[key] is None:
            return "-"
        return f"{row[key] / base[key]:.3f}x"

    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    print(f"\ndevice: {name}\n")
    print("| recipe | model | epochs | train s | to 99.0% s | to 99.5% s | final test acc | to 99.0% vs tutorial | "
          "train s vs tutorial |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['recipe']} | {r['model']} | {r['epochs']} | {r['train_seconds']:.1f} | "
              f"{fmt(r['seconds_to_0.990'])} | {fmt(r['seconds_to_0.995'])} | {r['final_test_accuracy']:.2%} | "
              f"{ratio(r, 'seconds_to_0.990')} | {ratio(r, 'train_seconds')} |")
    if compared is not None:
        print(f"\nThe default, {args.before} vs this checkout, back to back:\n\n{back_to_back.table(compared)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "results": rows, "back_to_back": compared},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
