"""Stage 7: predict. Read real handwriting: normalise image files the way MNIST was made, then
classify them with any :class:`~digitkit.classifier.Classifier` (run folder, ``.keras``, ``.onnx``
or Core ML file)."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from digitkit import DigitkitError
from digitkit.classifier import Classifier, load_classifier, verdict
from digitkit.data.normalize import IMAGE_SUFFIXES, Normalized, NormalizeError, load_image, normalize
from digitkit.files import atomic_write_bytes
from digitkit.runs import MODEL_FILE, Run, is_run_folder

MAX_FILES = 100_000  # a pattern matching more than this is surely a mistake (or a loop)


def _glob(pattern: str) -> list[Path]:
    """Matches of a glob pattern; ``**`` does not follow symbolic links (no loops, no duplicates)."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    base = Path(*parts[:first]) if first else Path(".")
    matches = []
    for match in base.glob(str(Path(*parts[first:]))):
        matches.append(match)
        if len(matches) > MAX_FILES:
            raise DigitkitError(f"{pattern!r} matches more than {MAX_FILES:,} files; narrow it down")
    return sorted(matches)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given; folders → their image files (sorted); patterns with * ? [ ] → their matches.
    A path that exists is taken as it is, even if its name holds * ? or [ ]."""
    return [path for path, _ in labelled_inputs(items)]


def labelled_inputs(items: list[str]) -> list[tuple[Path, str | None]]:
    """As :func:`expand_inputs`, with the label a file's folder gives it: a folder with no images of
    its own but class subfolders (the layout ``train --data`` takes) yields the images in each
    subfolder, labelled with the subfolder's name; everything else is unlabelled (None)."""
    out: list[tuple[Path, str | None]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            own = _images_in(path)
            if own:
                out += [(p, None) for p in own]
                continue
            classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
            out += [(p, c.name) for c in classes for p in _images_in(c)]
            if len(out) > MAX_FILES:
                raise DigitkitError(f"{item} holds more than {MAX_FILES:,} images; narrow it down")
        else:
            out += [(p, None) for p in _expand_one(item, path)]
    return out


def _expand_one(item: str, path: Path) -> list[Path]:
    """A file as given, or a pattern's matches."""
    if any(ch in item for ch in "*?[") and not path.exists():
        matches = [m for m in _glob(item) if m.is_file()]
        if not matches:
            raise DigitkitError(f"no files match {item!r}")
        return matches
    return [path]


def _is_run(model: Path) -> bool:
    """A run folder, or the model.keras inside one."""
    return is_run_folder(model) or (model.name == MODEL_FILE and is_run_folder(model.parent))


def load_model(model: str | Path) -> Classifier:
    """The model ``predict`` reads with: a run through its ONNX file (made once, then reused), which
    onnxruntime starts in a fraction of the time torch and Keras take, with the same answers
    (digitkit verify); any other file as it is."""
    model = Path(model)
    return load_classifier(resolve_onnx(model) if _is_run(model) else model)


def resolve_onnx(model: str | Path) -> Path:
    """The ONNX file that runs a model: the given .onnx, or a run folder's (or a .keras file's)
    export, made on the fly. A run's own export (``MNISTClassifier.onnx`` in its folder) is reused
    while it is newer than its model.keras, found without loading Keras or torch, so ``predict`` and
    ``serve`` start in about a second."""
    model = Path(model)
    if model.suffix in (".onnx", ".tflite"):  # served as given (a .tflite one in the LiteRT interpreter)
        if not model.is_file():
            raise DigitkitError(f"{model}: model file not found")
        return model
    if model.suffix in (".mlpackage", ".mlmodel"):
        raise DigitkitError(f"{model}: serve runs ONNX or LiteRT; give the run folder (exported to ONNX on the "
                            "fly), an .onnx or a .tflite file")
    if _is_run(model):
        run = Run.open(model)
        own = run.export_path(".onnx")
        if own.is_file() and run.model_path.is_file() and own.stat().st_mtime >= run.model_path.stat().st_mtime:
            return own
    from digitkit.classifier import KerasClassifier
    from digitkit.export import default_output, export

    trained = KerasClassifier.load(model)
    own = default_output(trained, "onnx")
    if trained.run and os.access(trained.run.path, os.W_OK):
        return export(trained, "onnx", own)  # what `digitkit export RUN --format onnx` writes
    scratch = Path(tempfile.mkdtemp(prefix="digitkit-onnx-"))
    atexit.register(shutil.rmtree, scratch, True)
    return export(trained, "onnx", scratch / own.name)


def prepare(source) -> Normalized:
    """Load (path, bytes or PIL image) and normalise; raises NormalizeError with a per-file reason."""
    image = source if isinstance(source, Image.Image) else load_image(source)
    return normalize(image)


def result_row(name: str, probs: np.ndarray, labels: list[str], top: int = 2) -> dict:
    order = np.argsort(-probs)
    return {
        "file": name,
        "label": labels[order[0]],
        "confidence": float(probs[order[0]]),
        "verdict": verdict(float(probs[order[0]])),
        "probabilities": {c: float(p) for c, p in zip(labels, probs)},
        "top": [[labels[i], float(probs[i])] for i in order[:top]],
    }


def _free_name(folder: Path, stem: str, taken: set[str]) -> Path:
    """``folder/stem.png``, or ``stem-2.png``... : never a file that is already there."""
    candidate, n = f"{stem}.png", 1
    while candidate in taken or (folder / candidate).exists():
        n += 1
        candidate = f"{stem}-{n}.png"
    taken.add(candidate)
    return folder / candidate


def predict_files(classifier: Classifier, paths: list[Path], top: int = 2,
                  save_input: str | Path | None = None) -> list[dict]:
    """One result dict per path, in order: a prediction, or ``{"file", "error"}`` for that file alone."""
    if save_input is not None:
        save_input = Path(save_input)
        try:
            save_input.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DigitkitError(f"cannot create {save_input} ({err.strerror})") from None
    rows: list[dict] = [{} for _ in paths]
    ready, images, taken = [], [], set()
    for i, path in enumerate(paths):
        try:
            if not path.is_file():
                raise NormalizeError("file not found" if not path.exists() else "not a file")
            normalized = prepare(path)
        except NormalizeError as err:
            rows[i] = {"file": str(path), "error": str(err)}
            continue
        except OSError as err:  # unreadable (permissions, I/O): this file only
            rows[i] = {"file": str(path), "error": f"cannot read ({err.strerror or err})"}
            continue
        if save_input is not None:
            saved = _free_name(save_input, path.stem, taken)
            png = io.BytesIO()
            Image.fromarray(normalized.image).save(png, "PNG")
            atomic_write_bytes(saved, png.getvalue())
            rows[i]["input_saved"] = str(saved)
        ready.append(i)
        images.append(normalized.image)
    if images:
        probs = classifier.predict(np.stack(images))
        for i, p in zip(ready, probs):
            rows[i] = result_row(str(paths[i]), p, classifier.labels, top) | rows[i]
    return rows
