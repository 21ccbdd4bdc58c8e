"""Your own classes: accuracy and training time on the example letters dataset (26 classes, built by
examples/make_letters.py), from scratch and fine-tuned from a digit run (`--init`), with 10, 30 and
100 images per class.

Every model is scored on the same 40 held-out images per letter (drawn by another seed), read
through the real normalisation, so the rows compare.

    python benchmarks/own_classes.py --init runs/first        # fine-tune from your digit run
    python benchmarks/own_classes.py                          # trains a digit run first (fast preset)
    python benchmarks/own_classes.py --sizes 10 30 --classes ABC
"""

from __future__ import annotations

import argparse
import json
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import make_letters  # noqa: E402

from digitkit.classifier import load_classifier  # noqa: E402
from digitkit.data.folders import load_folder  # noqa: E402
from digitkit.train import TrainConfig, train  # noqa: E402


def build(folder: Path, classes: str, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for char in classes:
        found = make_letters.sources(char)
        (folder / char).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            kind, data = found[rng.integers(len(found))]
            make_letters.render(kind, data, rng).save(folder / char / f"{n:04d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", help="a trained digit run to fine-tune from (default: train one, fast preset)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100], help="images per class")
    parser.add_argument("--classes", default=string.ascii_uppercase)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = tmp / "runs"
        init = args.init
        if init is None:
            init = str(train(TrainConfig.from_preset("fast", name="digits", runs_dir=str(runs)), quiet=True).path)
        build(tmp / "pool", args.classes, max(args.sizes), seed=1)
        build(tmp / "held-out", args.classes, 40, seed=2)
        test, _ = load_folder(tmp / "held-out")
        test_x = np.concatenate([test.x_train, test.x_val, test.x_test])
        test_y = np.concatenate([test.y_train, test.y_val, test.y_test])
        rows = []
        for size in args.sizes:
            subset = tmp / f"n{size}"
            for char in args.classes:
                (subset / char).mkdir(parents=True)
                for n in range(size):
                    shutil.copy(tmp / "pool" / char / f"{n:04d}.png", subset / char)
            for start in ("scratch", "init"):
                config = TrainConfig.from_preset(data=str(subset), name=f"{start}-{size}", runs_dir=str(runs),
                                                 init=init if start == "init" else None)
                began = time.perf_counter()
                run = train(config, quiet=True)
                wall = time.perf_counter() - began
                probs = load_classifier(run.path).predict(test_x)
                metrics = json.loads((run.path / "metrics.json").read_text())
                rows.append({"per_class": size, "start": start, "preset": config.preset, "model": config.model,
                             "held_out_accuracy": float((probs.argmax(1) == test_y).mean()),
                             "train_seconds": metrics["train_seconds"], "wall_seconds": round(wall, 1)})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n{len(args.classes)} classes; held-out: 40 images per class from another seed\n")
    print("| images per class | start | recipe | held-out accuracy | train s | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        start = "from scratch" if r["start"] == "scratch" else "--init (digit run)"
        print(f"| {r['per_class']} | {start} | {r['preset']} ({r['model']}) | {r['held_out_accuracy']:.1%} | "
              f"{r['train_seconds']:.1f} | {r['wall_seconds']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
