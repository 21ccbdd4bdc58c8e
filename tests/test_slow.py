"""Full-size runs, excluded from the default test run: `pytest -m slow` (about 10 minutes on 2 cores)."""

import json

import pytest

from digitkit.train import TrainConfig, train

pytestmark = pytest.mark.slow


def test_default_preset_beats_the_tutorial(tmp_path):
    run = train(TrainConfig.from_preset("default", name="default", runs_dir=str(tmp_path)), quiet=True)
    assert json.loads((run.path / "metrics.json").read_text())["test_accuracy"] >= 0.995


def test_tutorial_recipe_reproduces_about_99(tmp_path):
    run = train(TrainConfig.from_preset(model="tutorial", epochs=10, batch_size=200, name="tutorial",
                                        runs_dir=str(tmp_path)), quiet=True)
    assert 0.985 <= json.loads((run.path / "metrics.json").read_text())["test_accuracy"] <= 0.995
