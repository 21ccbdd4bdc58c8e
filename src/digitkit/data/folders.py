"""Your own classes: a folder of images, one subfolder per class (``DIR/<class>/*.png|jpg|…``).

Every image goes through the same normalisation as ``digitkit predict`` (data.normalize), so a
drawing saved from the web page or a phone scan trains the way it will later be read. Decoded
images are cached (a uint8 array with a manifest of file, class, size, time and hash, in the user
cache) so a second run does not decode again; files that changed, appeared or went are noticed and
only they are read again.

The split into train / validation / test is seeded and stratified (each class split in the same
proportions), or taken as it is when the folder has ``train/``, ``val/`` (or ``validation/``) and
``test/`` subfolders, each holding one folder per class.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.data.datasets import Dataset, cache_dir
from digitkit.data.normalize import IMAGE_SUFFIXES, NormalizeError, load_image, normalize
from digitkit.files import atomic_write_bytes, atomic_write_json

SPLITS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
# A class name, as one pattern that Python and JSON Schema (ECMA 262) read alike: whitespace spelled
# out (their \s differ), control characters, commas and slashes never, no dot first, no space at
# either end, 64 characters at most.
_SPACE = r" \t\n\v\f\r\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_NEVER = r",/\\\x00-\x1f\x7f-\x9f"
LABEL_REGEX = rf"^[^{_SPACE}.{_NEVER}](?:[^{_NEVER}]{{0,62}}[^{_SPACE}{_NEVER}])?$"
LABEL_PATTERN = re.compile(LABEL_REGEX)
CACHE_VERSION = 1
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15
MAX_FILES = 200_000


@dataclass
class FolderReport:
    """What happened to the files: kept per class, skipped (with why), duplicates across classes."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    decoded: int = 0
    reused: int = 0

    def lines(self) -> list[str]:
        out = [f"{len(self.counts)} classes, {sum(self.counts.values())} images "
               f"({self.decoded} decoded, {self.reused} from the cache)"]
        if self.skipped:
            out.append(f"skipped {len(self.skipped)} file(s):")
            out += [f"  {path}: {why}" for path, why in self.skipped[:20]]
            if len(self.skipped) > 20:
                out.append(f"  ... and {len(self.skipped) - 20} more")
        for first, second in self.duplicates[:10]:
            out.append(f"warning: {first} and {second} are the same image in two classes")
        if len(self.duplicates) > 10:
            out.append(f"warning: {len(self.duplicates) - 10} more duplicates across classes")
        return out


def check_label(name: str, where: Path) -> str:
    if not LABEL_PATTERN.fullmatch(name):
        raise DigitkitError(f"{where}: {name!r} is not a usable class name: use up to 64 characters, no commas, "
                            "slashes or control characters, not starting with a space or a dot; rename the folder")
    return name


def _class_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _files(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):  # does not follow symbolic links to folders
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
        if len(files) > MAX_FILES:
            raise DigitkitError(f"{folder} holds more than {MAX_FILES:,} files; is it the right folder?")
    return files


class _Cache:
    """Normalised images of one folder, keyed by relative path and (size, mtime); content hashes kept."""

    def __init__(self, root: Path):
        key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        self.dir = cache_dir() / "folders" / key
        self.entries: dict[str, dict] = {}
        self.images: dict[str, np.ndarray] = {}
        try:
            manifest = json.loads((self.dir / "manifest.json").read_text())
            if manifest.get("version") == CACHE_VERSION:
                arrays = np.load(self.dir / "images.npy")
                for entry in manifest["files"]:
                    self.entries[entry["file"]] = entry
                    if entry.get("index") is not None:
                        self.images[entry["file"]] = arrays[entry["index"]]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            self.entries, self.images = {}, {}  # no usable cache: read everything

    def lookup(self, relative: str, stat) -> dict | None:
        entry = self.entries.get(relative)
        if entry and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
            return entry
        return None

    def save(self, entries: list[dict], images: list[np.ndarray]) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.dir / "images.npy", _npy_bytes(_stack(images)))
            atomic_write_json(self.dir / "manifest.json", {"version": CACHE_VERSION, "files": entries})
        except OSError:
            pass  # a cache that cannot be written only costs time


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _read_classes(root: Path, class_dirs: list[Path], cache: _Cache, report: FolderReport, progress=None):
    """(images, labels, manifest records) of the readable images under the class folders; each
    record keeps its image under "_image" until the cache is saved."""
    images, labels, records = [], [], []
    seen_hashes: dict[str, str] = {}
    files = [(index, path) for index, folder in enumerate(class_dirs) for path in _files(folder)]
    for done, (index, path) in enumerate(files):
        relative = str(path.relative_to(root))
        if progress:
            progress(done + 1, len(files))
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            report.skipped.append((relative, "not an image file (by its suffix)"))
            continue
        try:
            stat = path.stat()
        except OSError as err:
            report.skipped.append((relative, f"cannot read ({err.strerror})"))
            continue
        record = cache.lookup(relative, stat)
        if record is not None and (record.get("error") or relative in cache.images):
            image = cache.images.get(relative)
            report.reused += 1
        else:
            try:
                blob = path.read_bytes()
            except OSError as err:
                report.skipped.append((relative, f"cannot read ({err.strerror})"))
                continue
            record = {"file": relative, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                      "sha256": hashlib.sha256(blob).hexdigest()}
            try:
                image = normalize(load_image(blob)).image
            except NormalizeError as err:
                image, record["error"] = None, str(err)
            report.decoded += 1
        record = {k: v for k, v in record.items() if k != "index"}
        if record.get("error"):
            report.skipped.append((relative, record["error"]))
            records.append(record)
            continue
        other = seen_hashes.get(record["sha256"])
        if other is not None and Path(other).parent != Path(relative).parent:
            report.duplicates.append((other, relative))
        seen_hashes.setdefault(record["sha256"], relative)
        records.append(record | {"class": class_dirs[index].name, "_image": image})
        images.append(image)
        labels.append(index)
    return images, labels, records


def _save_cache(cache: _Cache, records: list[dict]) -> None:
    images = []
    for record in records:
        image = record.pop("_image", None)
        record["index"] = None if image is None else len(images)
        if image is not None:
            images.append(image)
    cache.save(records, images)


def _stratified(labels: np.ndarray, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, validation and test: each class split alike, at least one of each."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        n_test = max(1, math.floor(len(members) * TEST_FRACTION))
        n_val = max(1, math.floor(len(members) * VAL_FRACTION))
        test += members[:n_test].tolist()
        val += members[n_test : n_test + n_val].tolist()
        train += members[n_test + n_val :].tolist()
    return (np.array(sorted(train), np.int64), np.array(sorted(val), np.int64), np.array(sorted(test), np.int64))


def load_folder(path: str | Path, seed: int = 0, progress=None) -> tuple[Dataset, FolderReport]:
    """A folder of class subfolders as a :class:`Dataset` (with its validation split), and a report."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DigitkitError(f"{root} is not a folder; give a folder with one subfolder of images per class")
    subfolders = {p.name.lower(): p for p in _class_dirs(root)}
    explicit = {SPLITS[name]: p for name, p in subfolders.items() if name in SPLITS}
    report = FolderReport()
    cache = _Cache(root)
    if explicit:
        missing = {"train", "val", "test"} - set(explicit)
        if missing:
            raise DigitkitError(f"{root} has {', '.join(sorted(explicit))} folders but no {', '.join(sorted(missing))}; "
                                "give all three (train/, val/, test/), or none and digitkit splits the images")
        names = sorted({c.name for split in explicit.values() for c in _class_dirs(split)})
        splits = {}
        for split, folder in explicit.items():
            present = {c.name for c in _class_dirs(folder)}
            if present != set(names):
                raise DigitkitError(f"{folder} lacks class folder(s) {', '.join(sorted(set(names) - present))}; "
                                    "each of train/, val/ and test/ needs every class")
        records = []
        for split in ("train", "val", "test"):
            # Labels by name, so every split numbers the classes the same way.
            folders = [explicit[split] / name for name in names]
            images, labels, split_records = _read_classes(root, folders, cache, report, progress)
            splits[split] = (_stack(images), np.array(labels, np.uint8))
            records += split_records
        _save_cache(cache, records)
    else:
        class_dirs = _class_dirs(root)
        names = [c.name for c in class_dirs]
        images, labels, records = _read_classes(root, class_dirs, cache, report, progress)
        _save_cache(cache, records)
        x, y = _stack(images), np.array(labels, np.uint8)
        _check_counts(root, names, y, minimum=3)
        train, val, test = _stratified(y, len(names), seed)
        splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}
    for name in names:
        check_label(name, root)
    if len(names) < 2:
        raise DigitkitError(f"{root} has {len(names)} class folder(s); a classifier needs at least 2 "
                            "(one subfolder of images per class)")
    if len(names) > 255:
        raise DigitkitError(f"{root} has {len(names)} class folders; digitkit trains up to 255 classes")
    if explicit:
        _check_counts(root, names, splits["train"][1], minimum=1, split="train")
    report.counts = {name: int((np.concatenate([s[1] for s in splits.values()]) == i).sum()) for i, name in enumerate(names)}
    dataset = Dataset(name=_dataset_name(root), x_train=splits["train"][0], y_train=splits["train"][1],
                      x_test=splits["test"][0], y_test=splits["test"][1], class_names=tuple(names),
                      source=str(root.resolve()), x_val=splits["val"][0], y_val=splits["val"][1])
    return dataset, report


def read_labelled(path: str | Path, progress=None) -> tuple[np.ndarray, np.ndarray, list[str], FolderReport]:
    """Every image of a folder of class subfolders, unsplit (to score a model on): images, labels as
    indices into the sorted class names, the names, and a report of what was read or skipped."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DigitkitError(f"{root} is not a folder; give a folder with one subfolder of images per class")
    class_dirs = _class_dirs(root)
    if not class_dirs:
        raise DigitkitError(f"{root} has no class folders; put each class's images in a subfolder named after it")
    names = [c.name for c in class_dirs]
    for name in names:
        check_label(name, root)
    report, cache = FolderReport(), _Cache(root)
    images, labels, records = _read_classes(root, class_dirs, cache, report, progress)
    _save_cache(cache, records)
    if not images:
        raise DigitkitError(f"{root} holds no readable images in its class folders")
    return _stack(images), np.array(labels, np.int64), names, report


def _stack(images: list[np.ndarray]) -> np.ndarray:
    return np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)


def _check_counts(root: Path, names: list[str], labels: np.ndarray, minimum: int, split: str = "") -> None:
    counts = np.bincount(labels, minlength=len(names)) if len(labels) else np.zeros(len(names), int)
    if not len(names):
        raise DigitkitError(f"{root} is empty: it needs one subfolder of images per class (at least 2 classes)")
    short = [(name, int(n)) for name, n in zip(names, counts) if n < minimum]
    if short:
        listed = ", ".join(f"{name} ({n})" for name, n in short)
        where = f" in {split}/" if split else ""
        raise DigitkitError(f"{root}: class(es) with too few images{where}: {listed}; each needs at least {minimum} "
                            f"({'one each for training, validation and test' if minimum == 3 else 'to train on'}); add more")


def _dataset_name(root: Path) -> str:
    return dataset_name(root.resolve().name)


def dataset_name(text: str) -> str:
    """A dataset's name as run folders and exported file names can carry it."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "folder"
