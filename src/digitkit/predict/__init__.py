"""Stage 7: predict. Read real handwriting: normalise images the way MNIST was made, then classify
them with any :class:`~digitkit.classifier.Classifier` (run folder, ``.keras``, ``.onnx``, ``.tflite``
or Core ML file).

This is the one path from an image to an answer: :func:`read_images` turns images into
:class:`Answer` values (label, confidence, verdict, top classes, probabilities, the 28×28 input), in
one batch; the CLI, the server, the Teach page and a notebook only format them."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from digitkit import DigitkitError
from digitkit.classifier import Classifier, load_classifier
from digitkit.data.normalize import IMAGE_SUFFIXES, BlankImage, NormalizeError, load_image, normalize
from digitkit.files import atomic_write_bytes
from digitkit.predict.answer import Answer
from digitkit.predict.files import load_file
from digitkit.predict.numbers import NumberAnswer, read_number
from digitkit.runs import MODEL_FILE, Run, is_run_folder

# What a server or a page needs to read an upload, from this stage (it reaches no further down).
__all__ = ["Answer", "NumberAnswer", "read_number", "BlankImage", "NormalizeError", "load_image", "read_images", "read_files", "save_inputs",
           "load_model", "model_and_images", "labelled_inputs", "served_model_path", "class_tally"]

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


def labelled_inputs(items: list[str]) -> list[tuple[Path, str | None]]:
    """Files as given; folders → their image files (sorted); patterns with * ? [ ] → their matches (a
    path that exists is taken as it is, even if its name holds * ? or [ ]). Each with the label its
    folder gives it: a folder with no images of its own but class subfolders (the layout ``train
    --data`` takes) yields the images in each subfolder, labelled with the subfolder's name;
    everything else is unlabelled (None)."""
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


MODEL_SUFFIXES = (".keras", ".onnx", ".tflite", ".mlpackage", ".mlmodel")


def model_and_images(items: list[str]) -> tuple[Path, list[str]]:
    """``[MODEL] IMAGES...``: the first item is the model when it is a run folder or a model file;
    otherwise every item is an image (file, folder or pattern) and the model is the newest run, so
    ``digitkit predict my_digit.png`` works as a newcomer types it."""
    first = Path(items[0])
    # A missing first item that is no image nor pattern is a mistyped model: let load_model say so.
    missing_model = (not first.exists() and len(items) > 1 and first.suffix.lower() not in IMAGE_SUFFIXES
                     and not any(ch in items[0] for ch in "*?["))
    if _is_run(first) or (first.suffix.lower() in MODEL_SUFFIXES and first.exists()) or missing_model:
        if len(items) == 1:
            raise DigitkitError(f"{items[0]} is a model: give the images to read after it")
        return first, items[1:]
    return Run.newest().path, items


def load_model(model: str | Path) -> Classifier:
    """The model ``predict`` reads with: a run through its ONNX file (made once, then reused), which
    onnxruntime starts in a fraction of the time torch and Keras take, with the same answers
    (digitkit verify); any other file as it is."""
    model = Path(model)
    return load_classifier(served_model_path(model) if _is_run(model) else model)


def served_model_path(model: str | Path) -> Path:
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


def read_images(classifier: Classifier, images: list[Image.Image], top: int = 2) -> list[Answer]:
    """One :class:`Answer` per image, all read in one batch; an image without ink answers "no digit
    found" (label None). An image that cannot be normalised raises :class:`NormalizeError`."""
    fields: list[np.ndarray | Answer] = []
    for image in images:
        try:
            fields.append(normalize(image).image)
        except BlankImage as err:
            fields.append(Answer.blank(str(err)))
    return _answer(classifier, fields, top)


def _answer(classifier: Classifier, fields: list, top: int) -> list:
    """``fields`` with each 28×28 input replaced by the model's answer to it (one batch); anything
    else (a blank answer, an error) stays as it is."""
    ready = [i for i, item in enumerate(fields) if isinstance(item, np.ndarray)]
    out = list(fields)
    if ready:
        for i, probs in zip(ready, classifier.predict(np.stack([fields[i] for i in ready]))):
            out[i] = Answer.of(probs, classifier.labels, top, fields[i])
    return out


def _free_name(folder: Path, stem: str, taken: set[str]) -> Path:
    """``folder/stem.png``, or ``stem-2.png``... : never a file that is already there."""
    candidate, n = f"{stem}.png", 1
    while candidate in taken or (folder / candidate).exists():
        n += 1
        candidate = f"{stem}-{n}.png"
    taken.add(candidate)
    return folder / candidate


def read_files(classifier: Classifier, paths: list[Path], top: int = 2) -> list[Answer | str]:
    """One answer per path, in order, or the reason (a string) that file alone could not be read."""
    fields: list[np.ndarray | str] = []
    for path in paths:
        try:
            fields.append(normalize(load_file(path)).image)
        except NormalizeError as err:  # a blank file too: predict reads one digit per file
            fields.append(str(err))
    return _answer(classifier, fields, top)


def save_inputs(paths: list[Path], answers: list[Answer | str], folder: str | Path) -> list[Path | None]:
    """Write the 28×28 image each file became into ``folder`` (``stem.png``, never over a file that
    is there); the path written for each answer, None where there was none."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DigitkitError(f"cannot create {folder} ({err.strerror})") from None
    taken: set[str] = set()
    saved: list[Path | None] = []
    for path, answer in zip(paths, answers):
        if not isinstance(answer, Answer) or answer.input is None:
            saved.append(None)
            continue
        png = io.BytesIO()
        Image.fromarray(answer.input).save(png, "PNG")
        saved.append(_free_name(folder, path.stem, taken))
        atomic_write_bytes(saved[-1], png.getvalue())
    return saved


def class_tally(rows: list[tuple[Answer | str, str | None]]) -> dict[str, tuple[int, int]]:
    """For answers whose right class is known: {class: (right, of)}."""
    right, seen = Counter(), Counter()
    for answer, expected in rows:
        if expected is not None:
            seen[expected] += 1
            right[expected] += isinstance(answer, Answer) and answer.label == expected
    return {name: (right[name], seen[name]) for name in sorted(seen)}
