"""`digitkit train` builds the epoch's images in a second process while torch and Keras import
(train.prefetch): the same arrays as built in the process itself, and no trace when it fails."""

import dataclasses
import signal

import numpy as np

from digitkit.data import load_dataset
from digitkit.train import TrainConfig
from digitkit.train.prefetch import Prefetch, prefetch


def test_the_epoch_built_in_another_process_is_the_one_built_here(tiny_mnist_dir):
    from digitkit.train.mix import EpochArrays

    config = TrainConfig.from_preset("fast", limit=600, val_size=200, data_dir=str(tiny_mnist_dir))
    there = Prefetch(config).arrays()
    here = EpochArrays.build(config, load_dataset("mnist", tiny_mnist_dir))
    assert there is not None
    for field in dataclasses.fields(EpochArrays):
        a, b = getattr(there, field.name), getattr(here, field.name)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, field.name
    # Other writers, their scans, non-digits and wrong cuts are all there, after MNIST's 600.
    assert there.pool_names == ["other writers", "scanned forms of them", "non-digits", "wrong cuts"]
    assert there.base == 600 and len(there.x_train) == there.pools[-1][0] + there.pools[-1][1]


def test_a_failure_there_is_left_to_the_training_here(tmp_path):
    # No MNIST files in data_dir: the child has no arrays, and the training meets the error itself.
    config = TrainConfig.from_preset("fast", data_dir=str(tmp_path))
    fetching = Prefetch(config)
    assert fetching.arrays() is None
    assert fetching._process.returncode == 0  # it answered "none", and ended


def test_a_training_that_stops_first_stops_the_child(tmp_path):
    fetching = Prefetch(TrainConfig.from_preset("fast"))
    fetching.close()  # at once, while the child still imports
    assert fetching._process.returncode == -signal.SIGKILL  # stopped, not finished


def test_only_a_fresh_run_on_a_built_in_dataset_prefetches(tmp_path, monkeypatch):
    assert prefetch(TrainConfig.from_preset("fast", data=str(tmp_path))) is None  # a folder: read with progress
    assert prefetch(TrainConfig.from_preset("fast", resume=True, name="x")) is None  # its own saved settings
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert prefetch(TrainConfig.from_preset("fast")) is None  # under torchrun: each rank builds its own
