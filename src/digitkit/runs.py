"""Run folders: ``runs/<name>/`` with the model, its config, history, metrics and pictures.

Every file is written to a temporary name in the same folder and renamed when complete, so a
crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from digitkit import DigitkitError

MODEL_FILE = "model.keras"


def atomic_write_bytes(path: Path, blob: bytes) -> None:
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
        tmp.write(blob)
    os.replace(tmp.name, path)


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode())


def atomic_path(path: Path):
    """A context manager giving a temporary sibling path that is renamed to ``path`` on success.

    The temporary name keeps ``path``'s suffix, since some writers (Keras, matplotlib) check it.
    """
    return _AtomicPath(Path(path))


class _AtomicPath:
    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.stem}.partial{path.suffix}")

    def __enter__(self) -> Path:
        _remove(self.tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            _remove(self.path)
            os.replace(self.tmp, self.path)
        else:
            _remove(self.tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def save_model_atomic(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


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

    @classmethod
    def create(cls, runs_dir: str | Path, name: str, overwrite: bool = False) -> "Run":
        if not name or "/" in name or name.startswith("."):
            raise DigitkitError(f"invalid run name {name!r}: use letters, digits, '-', '_' (no '/')")
        path = Path(runs_dir) / name
        if path.exists():
            if not overwrite:
                raise DigitkitError(f"run folder {path} already exists; choose another --name or pass --overwrite")
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return cls(path)

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

    def read_json(self, name: str) -> dict:
        file = self.path / name
        try:
            return json.loads(file.read_text())
        except FileNotFoundError:
            raise DigitkitError(f"{file} is missing; train the run again") from None
        except json.JSONDecodeError as err:
            raise DigitkitError(f"{file} is not valid JSON ({err})") from None

    @property
    def config(self) -> dict:
        return self.read_json("config.json")

    def load_model(self):
        return load_keras_model(self.model_path)


def load_keras_model(path: str | Path):
    """Load a ``.keras`` file with a clear error for missing or corrupt files."""
    import keras

    import digitkit.models  # noqa: F401  (registers digitkit's custom layers for deserialisation)

    path = Path(path)
    if not path.is_file():
        raise DigitkitError(f"{path}: model file not found")
    try:
        return keras.saving.load_model(path)
    except Exception as err:  # Keras raises many types for a bad archive
        raise DigitkitError(f"{path}: not a readable Keras model ({type(err).__name__}: {err})") from None
