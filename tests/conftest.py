import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from digitkit.data import load_dataset, write_idx


def pytest_configure(config):
    """Under pytest-xdist (the README's `pytest` runs two workers) each worker and the commands it
    starts compute on one thread: two workers with two threads each on two cores run slower than one."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory, mnist):
    """A small MNIST (1,200 train / 300 test images) in IDX files, for quick training runs."""
    folder = tmp_path_factory.mktemp("tiny-mnist")
    write_idx(folder / "train-images-idx3-ubyte.gz", mnist.x_train[:1200])
    write_idx(folder / "train-labels-idx1-ubyte.gz", mnist.y_train[:1200])
    write_idx(folder / "t10k-images-idx3-ubyte", mnist.x_test[:300])  # raw, not gzip: both are read
    write_idx(folder / "t10k-labels-idx1-ubyte", mnist.y_test[:300])
    return folder


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_mnist_dir):
    """The one quickly trained model every test that needs a trained run shares (trained once per
    session). Tests may export from it and read it; none changes its model or deletes its files."""
    from digitkit.train import TrainConfig, train

    config = TrainConfig.from_preset("fast", limit=1200, batch_size=64, epochs=2, val_size=200, name="s",
                                     runs_dir=str(tmp_path_factory.mktemp("runs")), data_dir=str(tiny_mnist_dir))
    return train(config, quiet=True)


@pytest.fixture(scope="session")
def onnx_model(trained_run):
    """The shared run's ONNX file (for the server tests)."""
    from digitkit.export import export

    return export(trained_run.path, "onnx", trained_run.export_path(".onnx"))


@pytest.fixture(scope="session")
def real_handwriting():
    """benchmarks/real_handwriting.py as a module (the benchmarks are scripts, not a package)."""
    path = Path(__file__).parents[1] / "benchmarks" / "real_handwriting.py"
    spec = importlib.util.spec_from_file_location("real_handwriting", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
