"""Extras installed one after the other keep working, as a user installs them: `pip install -e
".[dev]"`, later `pip install -e ".[litert]"` into the same environment; the notebook's runner still
imports and `pip check` finds no conflict. Slow (a fresh environment from the package index)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


@pytest.mark.slow
def test_litert_after_dev_keeps_the_notebook_working(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    for extra in ("dev", "litert"):
        done = subprocess.run([*pip, "-e", f"{REPO}[{extra}]"], capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, done.stderr[-3000:]
    check = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", "import nbclient, litert_torch, digitkit"],
                              capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr[-3000:]
