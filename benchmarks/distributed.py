"""Data-parallel training throughput: samples per second with 1 and several processes.

Runs `digitkit train` under torchrun (`--preset fast`, MNIST without the synthetic draw, `--epochs 2`)
with each process count and reads the training seconds from the run's metrics: samples per second =
examples trained / training seconds. On the CPU: 1 and 2 processes (torchrun gives each of several
processes one thread; one process uses all cores). With CUDA GPUs: 1 and all of them, one each.

    python benchmarks/distributed.py
    python benchmarks/distributed.py --procs 1 2 4 --batch-size 512

On a 2-core CPU, two processes share the two cores one process already uses: expect no speed-up
there, only the cost of the all-reduce; on several GPUs (or machines), near-linear scaling.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    gpus = torch.cuda.device_count()
    parser.add_argument("--procs", type=int, nargs="+", default=[1, gpus] if gpus > 1 else [1, 2])
    parser.add_argument("--batch-size", type=int, default=256, help="the global batch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.procs:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
                       "-m", "digitkit", "train", "--preset", "fast", "--synthetic", "0", "--epochs", str(args.epochs),
                       "--batch-size", str(args.batch_size), "--name", f"p{n}", "--runs-dir", tmp]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            metrics = json.loads((Path(tmp) / f"p{n}" / "metrics.json").read_text())
            history = json.loads((Path(tmp) / f"p{n}" / "history.json").read_text())
            examples = 55_000 * len(history)
            rows.append({"processes": n, "device": metrics["device"], "train_seconds": metrics["train_seconds"],
                         "samples_per_second": round(examples / metrics["train_seconds"]),
                         "test_accuracy": metrics["test_accuracy"]})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nglobal batch {args.batch_size}, {args.epochs} epochs of 55,000 MNIST images\n")
    print("| processes | device | train s | samples/s | speed-up | test accuracy |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['device']} | {r['train_seconds']:.1f} | {r['samples_per_second']:,} | "
              f"{r['samples_per_second'] / rows[0]['samples_per_second']:.2f}x | {r['test_accuracy']:.2%} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
