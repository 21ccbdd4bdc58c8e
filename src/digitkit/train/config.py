"""What a training run depends on: a :class:`Recipe` (model and optimisation) and the run settings
around it (:class:`TrainConfig`). Each field is declared once, with its help text; the CLI builds
its flags from these declarations."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from digitkit import ConfigError, DigitkitError

# The names of digitkit.models.MODELS (tests/test_models.py checks they agree), written out so that
# the command line can build its flags and settings without importing Keras (3 s).
MODELS = ("digitnet", "digitnet-small", "digitnet-large", "tutorial", "keras-example")


def option(help: str, **cli) -> dict:
    """Field metadata: the help text and any argparse settings of the field's command-line flag."""
    return {"help": help, "cli": cli}


@dataclass(frozen=True)
class Recipe:
    """How to train: the model and its optimisation settings."""

    model: str = field(metadata=option("architecture", choices=list(MODELS)))
    epochs: int = field(metadata=option("number of epochs"))
    batch_size: int = field(metadata=option("examples per step"))
    lr: float = field(metadata=option("(peak) learning rate"))
    schedule: str = field(default="onecycle", metadata=option("learning-rate schedule", choices=["onecycle", "constant"]))
    optimizer: str = field(default="adamw", metadata=option("optimizer", choices=["adamw", "adam"]))
    weight_decay: float = field(default=5e-4, metadata=option("AdamW weight decay"))
    label_smoothing: float = field(default=0.1, metadata=option("label smoothing of the training loss"))
    augment: bool = field(default=True, metadata=option("handwriting augmentation (--no-augment turns it off)"))
    synthetic: float = field(default=0.2, metadata=option(
        "fraction of each epoch drawn from other writers' handwriting (real pen digits and digitkit's "
        "synthetic styles MNIST lacks); digits only, 0 turns it off"))
    writers: str = field(default="pendigits+synthetic", metadata=option(
        "where --synthetic draws from: real pen digits of 24 writers, digitkit's generated styles, or both",
        choices=["pendigits+synthetic", "pendigits", "synthetic"]))
    scanned: float = field(default=0.5, metadata=option(
        "share of the other writers' digits each epoch that come as a scanned form delivers them (binarised "
        "at 16-32 px, jagged, some stretched to fill their box); they also join the calibration; 0 turns it off"))
    scanned_dataset: float = field(default=0.07, metadata=option(
        "each epoch also draws this share of the dataset's own digits again as a scanned form delivers them (its "
        "hundreds of writers, where --scanned has two dozen: a 1 stretched to fill its box reads as a 1); digits "
        "only, 0 turns it off"))
    scanned_stretched: float = field(default=0.6, metadata=option(
        "share of those scans (and of the calibration writers' scans) stretched to fill their box both ways, as "
        "some form processors deliver digits: a 1 becomes a fat bar, and reads as a 1"))
    non_digits: float = field(default=0.07, metadata=option(
        "fraction of each epoch drawn from drawings that are not digits (hearts, letters, scribbles, dots), "
        "learnt as 'no digit' (equal probabilities); digits only, 0 turns it off"))
    wrong_cuts: float = field(default=0.02, metadata=option(
        "fraction of each epoch that is what a number's reader sees when it cuts wrongly: two touching "
        "digits fitted as one, or a piece of one digit; learnt as 'no digit', so the reader cuts a pair "
        "apart and keeps a digit whole; digits only, 0 turns it off"))
    average: float = field(default=0.0, metadata=option(
        "keep an exponential moving average of the weights with this decay per step (0.998: about the "
        "last 500 steps) and validate and save it instead of the last step's weights; 0 turns it off"))
    final_mix: float = field(default=1.0, metadata=option(
        "share of the other writers, scans and non-digits that the last epoch keeps (of two or more); the rest "
        "of its images are the dataset's own, so the run ends on the dataset; 1 keeps the mix to the end"))
    shift_average: bool = field(default=False, metadata=option(
        "save a model that averages its answers over the image and its four one-pixel shifts (test-time "
        "augmentation: five passes per image; on in --preset best)"))
    calibrate: bool = field(default=True, metadata=option(
        "fit a temperature on the validation split so probabilities are honest (--no-calibrate turns it off)"))


PRESETS: dict[str, Recipe] = {
    # Its one epoch keeps the other writers and non-digits, not the extra scans (5% more images).
    "fast": Recipe("digitnet-small", epochs=1, batch_size=128, lr=3e-2, augment=False, scanned_dataset=0.0),
    "default": Recipe("digitnet", epochs=5, batch_size=256, lr=8e-3),
    "best": Recipe("digitnet-large", epochs=20, batch_size=256, lr=8e-3, shift_average=True),
    # Fine-tuning a trained run on a few images per class (--init): small batches, a gentler rate.
    "transfer": Recipe("digitnet", epochs=12, batch_size=32, lr=2e-3, synthetic=0.0, non_digits=0.0,
                       wrong_cuts=0.0, scanned_dataset=0.0),
    # The tutorial's own recipe: Adam at its default rate, no schedule, no augmentation.
    "tutorial": Recipe("tutorial", epochs=10, batch_size=200, lr=1e-3, schedule="constant",
                       optimizer="adam", weight_decay=0.0, label_smoothing=0.0, augment=False, synthetic=0.0,
                       non_digits=0.0, wrong_cuts=0.0, scanned_dataset=0.0, calibrate=False),
}
# Training a model by name alone uses this preset.
MODEL_PRESET = {"digitnet": "default", "digitnet-small": "fast", "digitnet-large": "best",
                "tutorial": "tutorial", "keras-example": "tutorial"}


@dataclass(frozen=True)
class TrainConfig(Recipe):
    """Everything a run depends on (a recipe plus the run's settings); saved as ``config.json``."""

    preset: str | None = field(default=None, metadata=option("training recipe (default: the model's own)",
                                                               choices=list(PRESETS)))
    seed: int = field(default=0, metadata=option("random seed; same seed, same result on CPU"))
    dataset: str = field(default="mnist", metadata=option("built-in dataset"))
    data: str | None = field(default=None, metadata=option(
        "your own images instead of a built-in dataset: a folder with one subfolder of images per class"))
    dataset_name: str | None = field(default=None, metadata=option(
        "name of a --data dataset, which names the exported model (shapes → ShapesClassifier.mlpackage); "
        "default: the folder's name"))
    init: str | None = field(default=None, metadata=option(
        "start from this run's weights (all but the last layer), so a few dozen images per class are enough"))
    data_dir: str | None = field(default=None, metadata=option(
        "folder with the dataset's IDX files (or set DIGITKIT_DATA_DIR)"))
    val_size: int = field(default=5000, metadata=option("validation images carved from the training set"))
    patience: int = field(default=4, metadata=option("early-stopping patience in epochs"))
    limit: int | None = field(default=None, metadata=option("train on only the first N training images (quick checks)"))
    name: str | None = field(default=None, metadata=option("run folder name (default: <model>-<date>-<time>)"))
    runs_dir: str = field(default="runs", metadata=option("where run folders go"))
    overwrite: bool = field(default=False, metadata=option("replace an existing run of that name (when training succeeds)"))
    precision: str = field(default="auto", metadata=option(
        "arithmetic of the training steps: auto (bf16 on CUDA and on CPUs with AMX or AVX-512 BF16, else fp32), "
        "fp32, bf16",
        choices=["auto", "fp32", "bf16"]))
    resume: bool = field(default=False, metadata=option(
        "continue the interrupted run of this --name from its last finished epoch (its own settings)"))

    @classmethod
    def from_preset(cls, preset: str | None = None, model: str | None = None, **overrides) -> "TrainConfig":
        """A config from a preset (or the given model's own preset), with explicit overrides.

        ``overrides`` whose value is None are ignored, so CLI flags that were not given fall through.
        """
        if model is None and overrides.get("init") is not None:
            model = _init_model(overrides["init"])  # fine-tuning keeps the architecture it starts from
        if preset is None:
            if model is not None and model not in MODELS:
                raise ConfigError("model", f"{model!r} is unknown; choose one of: {', '.join(MODELS)}")
            preset = "transfer" if overrides.get("init") is not None else MODEL_PRESET.get(model or "digitnet", "default")
        if preset not in PRESETS:
            raise ConfigError("preset", f"{preset!r} is unknown; choose one of: {', '.join(PRESETS)}")
        values = dataclasses.asdict(PRESETS[preset]) | {"preset": preset}
        if model is not None:
            values["model"] = model
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise DigitkitError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        values |= {k: v for k, v in overrides.items() if v is not None}
        return cls(**values)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for the first setting that cannot work."""
        from digitkit.data import SPECS

        if self.model not in MODELS:
            raise ConfigError("model", f"{self.model!r} is unknown; choose one of: {', '.join(MODELS)}")
        for name, lowest in (("epochs", 1), ("batch_size", 1), ("val_size", 0), ("patience", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ConfigError(name, f"must be a whole number of at least {lowest}, got {value!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError("limit", f"must be at least 1, got {self.limit!r}")
        if not _finite(self.lr) or not 0 < self.lr <= 10:
            raise ConfigError("lr", f"must be a number above 0 and at most 10, got {self.lr!r}")
        if not _finite(self.weight_decay) or not 0 <= self.weight_decay < 1:
            raise ConfigError("weight_decay", f"must be in [0, 1), got {self.weight_decay!r}")
        if not _finite(self.label_smoothing) or not 0 <= self.label_smoothing < 1:
            raise ConfigError("label_smoothing", f"must be in [0, 1), got {self.label_smoothing!r}")
        if not _finite(self.average) or not 0 <= self.average < 1:
            raise ConfigError("average", f"must be a decay from 0 (off) to below 1, got {self.average!r}")
        for name in ("scanned", "scanned_dataset", "scanned_stretched", "final_mix"):
            if not _finite(getattr(self, name)) or not 0 <= getattr(self, name) <= 1:
                raise ConfigError(name, f"must be a fraction from 0 to 1, got {getattr(self, name)!r}")
        if not _finite(self.synthetic) or not 0 <= self.synthetic <= 0.9:
            raise ConfigError("synthetic", f"must be a fraction from 0 to 0.9, got {self.synthetic!r}")
        if not _finite(self.non_digits) or not 0 <= self.non_digits <= 0.5:
            raise ConfigError("non_digits", f"must be a fraction from 0 to 0.5, got {self.non_digits!r}")
        if not _finite(self.wrong_cuts) or not 0 <= self.wrong_cuts <= 0.5:
            raise ConfigError("wrong_cuts", f"must be a fraction from 0 to 0.5, got {self.wrong_cuts!r}")
        if self.synthetic + self.non_digits + self.wrong_cuts > 0.9:
            raise ConfigError("non_digits", f"synthetic and wrong_cuts together must leave a tenth of each epoch "
                                            f"to the dataset; got {self.synthetic} + {self.non_digits} + {self.wrong_cuts}")
        for name in ("schedule", "optimizer", "preset", "precision", "writers"):
            choices = type(self).choices(name)
            value = getattr(self, name)
            if not (value is None and name == "preset") and value not in choices:
                raise ConfigError(name, f"{value!r} is unknown; choose one of: {', '.join(choices)}")
        if self.data is None and self.dataset not in SPECS:
            raise ConfigError("dataset", f"{self.dataset!r} is unknown; choose one of: {', '.join(SPECS)}")
        for name in ("data", "init", "data_dir", "name", "dataset_name"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(name, f"must be a non-empty path or name, got {value!r}")
        if self.init is not None and _init_model(self.init) != self.model:
            raise ConfigError("init", f"starts from a {_init_model(self.init)} run, but the model to train is "
                                      f"{self.model}; train the same model, or leave the model out")

    @classmethod
    def choices(cls, name: str) -> list:
        return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["cli"]["choices"]


def _init_model(init: str) -> str:
    """The architecture of the run that fine-tuning starts from."""
    from digitkit.runs import Run

    model = Run.open(init).config.get("model")
    if model not in MODELS:
        raise ConfigError("init", f"{init}: its config.json names no model digitkit knows ({model!r})")
    return model


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
