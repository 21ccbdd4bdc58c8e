"""Stage 3: training. ``train(TrainConfig.from_preset(...))`` trains a Keras model and writes a run
folder (model.keras, config.json, history.json, metrics.json, pictures)."""

from digitkit.train.config import MODEL_PRESET, PRESETS, ConfigError, Recipe, TrainConfig

__all__ = ["MODEL_PRESET", "PRESETS", "ConfigError", "Recipe", "TrainConfig", "train"]


def __getattr__(name: str):
    # ``train`` imports torch and Keras (3 s): loaded when first asked for, so that the settings
    # above, which the command line needs first, come without them.
    if name == "train":
        from digitkit.train.loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
