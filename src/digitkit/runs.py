"""Run folders: ``runs/<name>/`` with the model, its config, history, metrics and pictures.

A run is built in a hidden sibling folder and moved into place when training succeeds, so a failed
or interrupted run leaves nothing behind, and ``--overwrite`` replaces an old run only at the end
(and only a folder that is a run).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from digitkit import DigitkitError
from digitkit.files import replace_path

RUNS_DIR = "runs"
MODEL_FILE = "model.keras"
TEST_FILES = ("test-images-idx3-ubyte.gz", "test-labels-idx1-ubyte.gz")  # a folder dataset's test split
RUN_MARKERS = ("config.json", MODEL_FILE)  # a folder holding one of these was written by digitkit train
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise DigitkitError(f"invalid run name {name!r}: use up to 128 letters, digits, '.', '-' or '_', "
                            "starting with a letter or digit")
    return name


def model_file_stem(dataset: str) -> str:
    """The exported file's name for a model of ``dataset``, which Xcode turns into the Swift class:
    MNISTClassifier for MNIST, FashionMNISTClassifier, LettersClassifier for a folder "letters"."""
    if dataset == "mnist":
        return "MNISTClassifier"
    words = re.findall(r"[A-Za-z0-9]+", dataset)
    stem = "".join(w if w.isupper() else w[:1].upper() + w[1:] for w in words) or "Digitkit"
    if stem[0].isdigit():
        stem = "Model" + stem
    return stem.replace("FashionMnist", "FashionMNIST") + "Classifier"


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in RUN_MARKERS)


@dataclass(frozen=True)
class Run:
    """A run folder on disk."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    # -- creating ------------------------------------------------------------------------------
    @classmethod
    def check_target(cls, runs_dir: str | Path, name: str, overwrite: bool = False) -> Path:
        """The final path of a new run; refuses a taken name (unless ``overwrite`` and it is a run)."""
        path = Path(runs_dir) / check_run_name(name)
        if path.exists() or path.is_symlink():
            if not overwrite:
                raise DigitkitError(f"run folder {path} already exists; choose another name or overwrite it")
            if path.is_symlink() or not is_run_folder(path):
                raise DigitkitError(f"{path} exists and is not a run folder (no {' or '.join(RUN_MARKERS)}); "
                                    "it will not be replaced: choose another name")
        return path

    @staticmethod
    def staged_path(runs_dir: str | Path, name: str) -> Path:
        """Where a run is built (hidden) before :meth:`publish` moves it into place."""
        return Path(runs_dir) / f".{name}.partial"

    @staticmethod
    def staged_paths(runs_dir: str | Path, prefix: str = "") -> list[Path]:
        """The runs being built (or left half-built by a process that stopped) whose names start with ``prefix``."""
        return sorted(Path(runs_dir).glob(f".{prefix}*.partial"))

    @classmethod
    def staging(cls, runs_dir: str | Path, name: str, resume: bool = False) -> "Run":
        """The hidden folder a run is built in: fresh, or (``resume``) the one an interrupted run left."""
        path = cls.staged_path(runs_dir, name)
        try:
            if path.exists() and not resume:
                shutil.rmtree(path)  # an interrupted run of this name (digitkit's own folder): start over
            path.mkdir(parents=True, exist_ok=resume)
        except OSError as err:
            raise DigitkitError(f"cannot create a run folder in {runs_dir} ({err.strerror})") from None
        return cls(path)

    def publish(self, target: Path, overwrite: bool = False) -> "Run":
        """Move this staged run to ``target`` (replacing an old run there when ``overwrite``)."""
        Run.check_target(target.parent, target.name, overwrite)
        replace_path(self.path, target)
        return Run(target)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> "Run":
        """Open an existing run folder (or a ``model.keras`` inside one)."""
        path = Path(path)
        if path.is_file() and path.name == MODEL_FILE:
            path = path.parent
        if not path.is_dir():
            raise DigitkitError(f"{path} is not a run folder; give the folder `digitkit train` wrote (runs/<name>)")
        if not (path / MODEL_FILE).is_file():
            raise DigitkitError(f"run folder {path} has no {MODEL_FILE}: training did not finish; train it again")
        return cls(path)

    @classmethod
    def newest(cls, runs_dir: str | Path = RUNS_DIR) -> "Run":
        """The most recently trained run in ``runs_dir``."""
        models = [p for p in Path(runs_dir).glob(f"*/{MODEL_FILE}") if not p.parent.name.startswith(".")]
        if not models:
            raise DigitkitError(f"no trained run in {runs_dir}; train one first: digitkit train")
        return cls(max(models, key=lambda p: p.stat().st_mtime).parent)

    def read_json(self, name: str, required: bool = True) -> dict:
        """A JSON object from the run folder; ``{}`` for a missing optional file."""
        file = self.path / name
        try:
            payload = json.loads(file.read_text())
        except FileNotFoundError:
            if not required:
                return {}
            raise DigitkitError(f"{file} is missing; train the run again") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DigitkitError(f"{file} is not valid JSON ({err})") from None
        except OSError as err:
            raise DigitkitError(f"cannot read {file} ({err.strerror})") from None
        if not isinstance(payload, dict):
            raise DigitkitError(f"{file} must hold a JSON object, not {type(payload).__name__}; train the run again")
        return payload

    @property
    def config(self) -> dict:
        return self.read_json("config.json")

    def export_path(self, suffix: str) -> Path:
        """Where the run's own export with this suffix goes (``MNISTClassifier.onnx``)."""
        return self.path / f"{model_file_stem(self.dataset)}{suffix}"

    @property
    def metrics(self) -> dict:
        return self.read_json("metrics.json", required=False)

    @property
    def test_accuracy(self) -> float | None:
        return number_or_none(self.metrics.get("test_accuracy"))

    @property
    def dataset(self) -> str:
        value = self.config.get("dataset", "mnist")
        if not isinstance(value, str):
            raise DigitkitError(f"{self.path / 'config.json'}: 'dataset' must be a string")
        return value

    @property
    def labels(self) -> list[str]:
        """The class names, in output order (config.json's ``labels``; the dataset's for older runs)."""
        labels = self.config.get("labels")
        if labels is None:
            from digitkit.data import SPECS

            spec = SPECS.get(self.dataset)
            if spec is None:
                raise DigitkitError(f"{self.path / 'config.json'}: unknown dataset {self.dataset!r} and no 'labels'")
            return list(spec.class_names)
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(v, str) for v in labels):
            raise DigitkitError(f"{self.path / 'config.json'}: 'labels' must be a list of at least 2 strings")
        return labels

    def load_model(self):
        return load_keras_model(self.model_path)

    def test_split(self, data_dir: str | None = None):
        """(images, labels) the run is tested on: its own copy of the split (folder datasets), else the
        built-in dataset's test split."""
        from digitkit.data import load_dataset, read_idx

        if (self.path / TEST_FILES[0]).is_file():
            images = read_idx(self.path / TEST_FILES[0], 3, (None, 28, 28))
            labels = read_idx(self.path / TEST_FILES[1], 1)
        else:
            saved = self.config.get("data_dir")
            data = load_dataset(self.dataset, data_dir or (saved if isinstance(saved, str) else None))
            images, labels = data.x_test, data.y_test
        if len(images) != len(labels) or (len(labels) and labels.max() >= len(self.labels)):
            raise DigitkitError(f"{self.path}: the test images do not match the run's {len(self.labels)} labels")
        return images, labels


def number_or_none(value) -> float | None:
    """A finite number from a JSON field, or None (fields in files a user may have edited)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def load_keras_model(path: str | Path):
    """Load a ``.keras`` file with a clear error for missing or corrupt files."""
    import digitkit.models  # noqa: F401  (selects the backend before Keras loads)
    import keras

    path = Path(path)
    if not path.is_file():
        raise DigitkitError(f"{path}: model file not found")
    try:
        return keras.saving.load_model(path)
    except Exception as err:  # Keras raises many types for a bad archive
        raise DigitkitError(f"{path}: not a readable Keras model ({type(err).__name__}: {err})") from None
