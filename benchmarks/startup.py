"""Wall time of digitkit's quick commands from the shell, and where it goes.

Each command runs as a user types it (a fresh `python -m digitkit` process), a few times; the table
shows the median wall time. Where the time goes:

- `digitkit train --preset fast`: the step times the command prints at its end (start-up = Python
  and imports, data, training, model, calibration, test, pictures, ONNX export);
- `digitkit predict RUN one.png`: the imports it needs (onnxruntime, Pillow, SciPy's ndimage, Rich),
  timed in a fresh process, and the rest (finding the run's ONNX file, loading it, reading the image);
- `digitkit --version`: Python's own start-up and digitkit's package import.

    python benchmarks/startup.py
    python benchmarks/startup.py --repeat 5 --json startup.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from digitkit.data import load_dataset


def wall(args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "digitkit", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def import_seconds(modules: str) -> float:
    code = f"import time; t = time.perf_counter(); import {modules}; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command (the median is shown)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        Image.fromarray(255 - load_dataset("mnist").x_test[0]).save(tmp / "one.png")  # a 7, dark ink on white

        times = [wall(["--version"], tmp)[0] for _ in range(args.repeat)]
        rows.append({"command": "digitkit --version", "seconds": statistics.median(times),
                     "where": "Python start-up and `import digitkit` (no torch, Keras or NumPy)"})

        times, steps = [], []
        for i in range(args.repeat):
            seconds, out = wall(["train", "--preset", "fast", "--name", f"fast{i}", "--runs-dir", "runs"], tmp)
            times.append(seconds)
            line = next(l for l in out.splitlines() if " s in all: " in l)
            steps.append({k: float(v) for k, v in re.findall(r"([A-Za-z -]+?) ([0-9.]+) s", line.split(": ", 1)[1])})
        median_run = steps[sorted(range(len(times)), key=times.__getitem__)[len(times) // 2]]
        rows.append({"command": "digitkit train --preset fast", "seconds": statistics.median(times),
                     "where": ", ".join(f"{k.strip()} {v:.1f} s" for k, v in median_run.items()), "steps": median_run})

        run = tmp / "runs" / "fast0"
        times = [wall(["predict", str(run), "one.png"], tmp)[0] for _ in range(args.repeat)]
        imports = import_seconds("digitkit.cli, onnxruntime, PIL.Image, scipy.ndimage, rich.table")
        rows.append({"command": "digitkit predict RUN one.png", "seconds": statistics.median(times),
                     "where": f"Python and imports (onnxruntime, Pillow, SciPy ndimage, Rich) {imports:.1f} s; "
                              f"the run's ONNX file, the image, the table {statistics.median(times) - imports:.1f} s",
                     "imports_seconds": imports})

    print("\n| command | wall s (median) | where the time goes |\n|---|---|---|")
    for row in rows:
        print(f"| `{row['command']}` | {row['seconds']:.2f} | {row['where']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
