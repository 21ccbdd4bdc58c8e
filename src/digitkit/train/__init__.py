"""Stage 3: training. ``train(TrainConfig.from_preset(...))`` trains a Keras model and writes a run
folder (model.keras, config.json, history.json, metrics.json, pictures)."""

from digitkit.train.config import MODEL_PRESET, PRESETS, ConfigError, Recipe, TrainConfig
from digitkit.train.loop import train

__all__ = ["MODEL_PRESET", "PRESETS", "ConfigError", "Recipe", "TrainConfig", "train"]
