"""The default recipe of an earlier revision and of this checkout, trained back to back on this
machine, then both read the real-handwriting benchmark (benchmarks/real_handwriting.py, this
checkout's version, so both models see the same images).

The earlier revision runs from a temporary `git worktree` with its own code on PYTHONPATH, as its
users ran it (its own data, recipe and normalisation). Training time is the run's own
`train_seconds` (metrics.json): the same clock both revisions report.

    python benchmarks/back_to_back.py 266e97c                  # round 2's default vs now
    python benchmarks/back_to_back.py 266e97c --runs-dir runs/b2b --json b2b.json
    python benchmarks/back_to_back.py 266e97c --skip-reading   # training time and MNIST only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def train(src: Path, cwd: Path, runs_dir: Path, name: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-m", "digitkit", "train", "--name", name, "--runs-dir", str(runs_dir),
                    "--overwrite"], cwd=cwd, env=env, check=True)
    return json.loads((runs_dir / name / "metrics.json").read_text())


def read(run: Path) -> dict:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "real_handwriting.py"), str(run), "--json", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def compare(before: str, runs_dir: str | None = None, reading: bool = True) -> dict:
    """Train ``before``'s default and this checkout's, back to back; read both unless ``reading`` is off."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(runs_dir or tmp).resolve()
        worktree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), before],
                       check=True, capture_output=True)
        try:
            results = {"before": {"revision": before, **train(worktree / "src", worktree, runs, "before")},
                       "after": {"revision": "this checkout", **train(REPO / "src", REPO, runs, "after")}}
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], capture_output=True)
        if reading:
            for key in ("before", "after"):
                results[key]["reading"] = read(runs / key)
    return results


def table(results: dict) -> str:
    before, after = results["before"], results["after"]
    lines = [f"| | {before['revision']} | this checkout |", "|---|---|---|",
             f"| train s | {before['train_seconds']:.1f} | {after['train_seconds']:.1f} "
             f"({after['train_seconds'] / before['train_seconds']:.2f}x) |",
             f"| MNIST test | {before['test_accuracy']:.2%} | {after['test_accuracy']:.2%} |"]
    if "reading" in after:
        for part in ("real", "generated"):
            lines.append(f"| {part} stand-in | {before['reading'][part]['accuracy']:.2%} | "
                         f"{after['reading'][part]['accuracy']:.2%} |")
        real_b, real_a = before["reading"]["real"], after["reading"]["real"]
        for render in real_a["by_render"]:  # drawn, and scan-style (this checkout's stand-in)
            lines.append(f"| real, {render} | {real_b['by_render'][render]['accuracy']:.2%} | "
                         f"{real_a['by_render'][render]['accuracy']:.2%} |")
        for key, text in (("wrong_flagged_not_sure", "real: wrong answers flagged not sure"),
                          ("right_flagged_not_sure", "real: right answers flagged not sure")):
            if real_b.get(key) is not None and real_a.get(key) is not None:
                lines.append(f"| {text} | {real_b[key]:.1%} | {real_a[key]:.1%} |")
        lines.append(f"| non-digits answered as a sure digit | {before['reading']['non-digits']['sure_digit']:.1%} | "
                     f"{after['reading']['non-digits']['sure_digit']:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--runs-dir", default=None, help="keep the two runs here (default: a temporary folder)")
    parser.add_argument("--skip-reading", action="store_true", help="do not run the real-handwriting benchmark")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    results = compare(args.before, args.runs_dir, not args.skip_reading)
    print("\n" + table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
