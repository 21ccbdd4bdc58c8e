"""Stage 7: predict. Read real handwriting: normalise image files the way MNIST was made, then
classify them with a run folder, a ``.keras`` file, an ``.onnx`` or a Core ML file."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from digitkit import DigitkitError
from digitkit.predict.preprocessing import Normalized, NormalizeError, load_image, normalize

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


@dataclass
class Classifier:
    """A model loaded once: ``predict(images uint8 (N, 28, 28)) → probabilities (N, classes)``."""

    name: str
    predict: Callable[[np.ndarray], np.ndarray]
    class_names: list[str]


def load_classifier(path: str | Path) -> Classifier:
    """Load a run folder, ``.keras``, ``.onnx``, ``.mlpackage`` or ``.mlmodel`` as a :class:`Classifier`."""
    from digitkit.data import SPECS

    path = Path(path)
    if not path.exists():
        raise DigitkitError(f"{path}: model not found; give a run folder, .keras, .onnx, .mlpackage or .mlmodel")
    if path.is_dir() and path.suffix != ".mlpackage" or path.suffix == ".keras":
        from digitkit.evaluate import predict_dataset
        from digitkit.export.core import ExportSource

        source = ExportSource.load(path)
        return Classifier(source.name, lambda images: predict_dataset(source.model, images),
                          list(source.class_names))
    from digitkit.verify import load_exported

    runner, labels = load_exported(path)
    return Classifier(path.name, runner, labels or list(SPECS["mnist"].class_names))


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given; folders → their image files (sorted); patterns with * ? [ ] → their matches."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif any(ch in item for ch in "*?[") and not path.exists():
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise DigitkitError(f"no files match {item!r}")
            paths += [m for m in matches if m.is_file()]
        else:
            paths.append(path)
    return paths


def prepare(source) -> Normalized:
    """Load (path, bytes or PIL image) and normalise; raises NormalizeError with a per-file reason."""
    image = source if isinstance(source, Image.Image) else load_image(source)
    return normalize(image)


def result_row(name: str, probs: np.ndarray, class_names: list[str], top: int = 2) -> dict:
    order = np.argsort(-probs)
    return {
        "file": name,
        "label": class_names[order[0]],
        "confidence": float(probs[order[0]]),
        "probabilities": {c: float(p) for c, p in zip(class_names, probs)},
        "top": [[class_names[i], float(probs[i])] for i in order[:top]],
    }


def predict_files(classifier: Classifier, paths: list[Path], top: int = 2,
                  save_input: str | Path | None = None) -> list[dict]:
    """One result dict per path, in order: a prediction, or ``{"file", "error"}`` for that file alone."""
    if save_input is not None:
        save_input = Path(save_input)
        save_input.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = [{} for _ in paths]
    ready, images = [], []
    for i, path in enumerate(paths):
        try:
            if not path.is_file():
                raise NormalizeError("file not found" if not path.exists() else "not a file")
            normalized = prepare(path)
        except NormalizeError as err:
            rows[i] = {"file": str(path), "error": str(err)}
            continue
        if save_input is not None:
            Image.fromarray(normalized.image).save(save_input / f"{path.stem}.png")
        ready.append(i)
        images.append(normalized.image)
    if images:
        probs = classifier.predict(np.stack(images))
        for i, p in zip(ready, probs):
            rows[i] = result_row(str(paths[i]), p, classifier.class_names, top)
    return rows
