"""digitkit as a person gets it without the repository: a wheel built from this checkout, installed
into a fresh virtual environment in a temporary folder, trains the fast preset and serves the page."""

import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

import digitkit

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # No build isolation: the setuptools of this environment builds it (no download needed).
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(out),
                    "-q"], check=True, capture_output=True)
    (built,) = out.glob("digitkit-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh venv holding only the wheel; its dependencies (torch, Keras, ...) are this
    environment's, seen through a .pth file, so the test needs no download. A plain path in a .pth
    file does not run the .pth files of that folder, so this checkout's editable install stays out."""
    folder = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return folder


def test_wheel_carries_the_data_and_pages_and_one_version(wheel):
    assert wheel.name.startswith(f"digitkit-{digitkit.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("digitkit/data/mnist/train-images-idx3-ubyte.gz", "digitkit/data/mnist/t10k-labels-idx1-ubyte.gz",
                   "digitkit/data/extra/images-idx3-ubyte.gz", "digitkit/data/extra/non-digits-images-idx3-ubyte.gz",
                   "digitkit/data/extra/pendigits-images-idx3-ubyte.gz", "digitkit/data/pendigits/pendigits-orig.tra.gz",
                   "digitkit/data/pendigits/README.md", "digitkit/serve/static/index.html"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "notebooks/", "benchmarks/", "apps/")) for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert f"Version: {digitkit.__version__}\n" in text
    assert 'Provides-Extra: litert' in text
    assert wheel.stat().st_size < 40 * 2**20


def test_installed_wheel_trains_and_serves_outside_the_repository(venv, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIGITKIT_DATA_DIR")}
    digitkit_cli = str(venv / "bin" / "digitkit")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import digitkit; print(digitkit.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not this checkout's
    version = subprocess.run([digitkit_cli, "--version"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             check=True).stdout
    assert version.strip() == f"digitkit {digitkit.__version__}"

    trained = subprocess.run([digitkit_cli, "train", "--preset", "fast", "--name", "fromwheel"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    accuracy = float(re.search(r"Test accuracy ([0-9.]+)%", trained.stdout).group(1))
    assert accuracy > 98.5, trained.stdout  # MNIST and the other writers came from the wheel
    run = tmp_path / "runs" / "fromwheel"
    assert (run / "model.keras").is_file() and (run / "MNISTClassifier.onnx").is_file()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([digitkit_cli, "serve", str(run), "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        page = None
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert page is not None and "<canvas" in page
        model = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/model", timeout=5).read().decode()
        assert '"fromwheel"' in model
    finally:
        server.terminate()
        server.wait(10)
