"""Time-to-accuracy of the training presets against the tutorial's recipe, in one process.

For each recipe: train on MNIST (55k train / 5k validation), measure MNIST test accuracy after every
epoch (outside the timed loop), and report the training seconds needed to first reach 99.0% and 99.5%,
the final test accuracy of the saved (best-validation) model, and the time ratio against the tutorial.

    python benchmarks/train_speed.py                       # all presets + tutorial recipe
    python benchmarks/train_speed.py --recipes default     # one recipe
    python benchmarks/train_speed.py --json results.json   # also save the table

Works on CPU and CUDA (the device is printed). Each recipe reuses `digitkit.train.train`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import digitkit  # noqa: F401
import torch

from digitkit.data import load_dataset
from digitkit.evaluate import predict_dataset
from digitkit.train import PRESETS, TrainConfig, device, train

THRESHOLDS = (0.990, 0.995)


def measure(recipe: str, seed: int, runs_dir: str) -> dict:
    test = load_dataset("mnist")
    curve: list[tuple[float, float]] = []

    def on_epoch_end(epoch, model, logs):
        probs = predict_dataset(model, test.x_test)
        curve.append((logs["seconds"], float((probs.argmax(1) == test.y_test).mean())))

    start = time.perf_counter()
    run = train(TrainConfig.from_preset(recipe, seed=seed, name=recipe, runs_dir=runs_dir, overwrite=True),
                on_epoch_end=on_epoch_end, quiet=True)
    wall = time.perf_counter() - start
    metrics = json.loads((run.path / "metrics.json").read_text())
    row = {
        "recipe": recipe,
        "model": metrics["model"],
        "epochs": metrics["epochs_run"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(wall, 1),
        "final_test_accuracy": metrics["test_accuracy"],
        "per_epoch": [{"seconds": round(s, 2), "test_accuracy": a} for s, a in curve],
    }
    for threshold in THRESHOLDS:
        reached = next((s for s, a in curve if a >= threshold), None)
        row[f"seconds_to_{threshold:.3f}"] = None if reached is None else round(reached, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["tutorial", "fast", "default", "best"],
                        choices=list(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--runs-dir", help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()

    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs_dir or tmp
        for recipe in args.recipes:
            rows.append(measure(recipe, args.seed, runs_dir))
            print(json.dumps(rows[-1]), flush=True)

    base = next((r for r in rows if r["recipe"] == "tutorial"), None)
    print("\n| recipe | model | epochs | train s | to 99.0% s | to 99.5% s | final test acc | time vs tutorial |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['train_seconds'] / base['train_seconds']:.2f}x" if base else "-"
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        print(f"| {r['recipe']} | {r['model']} | {r['epochs']} | {r['train_seconds']:.1f} | "
              f"{fmt(r['seconds_to_0.990'])} | {fmt(r['seconds_to_0.995'])} | "
              f"{r['final_test_accuracy']:.2%} | {ratio} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
