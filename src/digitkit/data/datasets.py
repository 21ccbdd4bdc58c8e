"""Built-in datasets (MNIST, Fashion-MNIST): where their files come from, and loading them.

Lookup order for each dataset, first match wins:
1. ``data_dir`` argument, or the ``DIGITKIT_DATA_DIR`` environment variable (the folder holding the
   four IDX files, or a parent with a ``<dataset>/`` sub-folder);
2. the copy shipped inside the package (``digitkit/data/mnist/``, in the wheel too) or installed by the OS
   (Debian's ``dataset-fashion-mnist`` under ``/usr/share/datasets/fashion-mnist/``);
3. the user cache (``$XDG_CACHE_HOME/digitkit/<dataset>/``, default ``~/.cache/digitkit``);
4. a download of the canonical files from the public mirrors into that cache, MD5-checked.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.data.idx import read_idx

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
PACKAGE_DATA = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]
    md5: dict[str, str]  # of the published .gz files, checked on download
    system_dirs: tuple[Path, ...] = ()


DIGIT_LABELS = [str(d) for d in range(10)]  # MNIST's classes, and the labels of every digit model

SPECS = {
    "mnist": DatasetSpec(
        name="mnist",
        class_names=tuple(DIGIT_LABELS),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        md5={
            "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_images": "9fb629c4189551a2d022fa330f9573f3",
            "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        system_dirs=(PACKAGE_DATA / "mnist",),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    ),
}


@dataclass
class Dataset:
    """Images as uint8 arrays of shape (N, 28, 28), labels as uint8 arrays of shape (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    x_val: np.ndarray | None = None  # an explicit validation split (folder datasets); else carved from train
    y_val: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "digitkit"


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _complete(folder: Path) -> dict[str, Path] | None:
    found = {key: _find_file(folder, stem) for key, stem in FILES.items()}
    return found if all(found.values()) else None


def _spec(name: str) -> DatasetSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise DigitkitError(f"unknown dataset {name!r}; choose one of: {', '.join(SPECS)}") from None


def _download(spec: DatasetSpec, target: Path) -> dict[str, Path]:
    target.mkdir(parents=True, exist_ok=True)
    for key, stem in FILES.items():
        dest = target / f"{stem}.gz"
        if dest.is_file():
            continue
        errors = []
        for mirror in spec.mirrors:
            try:
                with urllib.request.urlopen(mirror + dest.name, timeout=30) as response:
                    blob = response.read()
            except (urllib.error.URLError, OSError) as err:
                errors.append(f"{mirror}: {getattr(err, 'reason', err)}")
                continue
            digest = hashlib.md5(blob).hexdigest()
            if digest != spec.md5[key]:
                errors.append(f"{mirror}: checksum mismatch (md5 {digest})")
                continue
            with tempfile.NamedTemporaryFile(dir=target, delete=False, suffix=".part") as tmp:
                tmp.write(blob)
            os.replace(tmp.name, dest)
            break
        else:
            raise DigitkitError(
                f"could not download {spec.name} file {dest.name} ({'; '.join(errors)}).\n"
                f"Put the four files {', '.join(s + '.gz' for s in FILES.values())} in {target} "
                f"(or any folder, then pass --data-dir / set DIGITKIT_DATA_DIR)."
            )
    return _complete(target)  # type: ignore[return-value]


def locate(name: str = "mnist", data_dir: str | Path | None = None, download: bool = True) -> dict[str, Path]:
    """Return the paths of the dataset's four IDX files, following the lookup order above."""
    spec = _spec(name)
    data_dir = data_dir or os.environ.get("DIGITKIT_DATA_DIR")
    if data_dir:
        folder = Path(data_dir).expanduser()
        for candidate in (folder, folder / name):
            if found := _complete(candidate):
                return found
        raise DigitkitError(
            f"{folder} does not hold the {name} files; it needs "
            f"{', '.join(s + '[.gz]' for s in FILES.values())} (directly or in {folder / name})"
        )
    for folder in (*spec.system_dirs, cache_dir() / name):
        if found := _complete(folder):
            return found
    if not download:
        raise DigitkitError(f"no local copy of {name}; put its files in {cache_dir() / name}")
    return _download(spec, cache_dir() / name)


def load_dataset(name: str = "mnist", data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """Load a built-in dataset as uint8 numpy arrays (see the module docstring for where from)."""
    paths = locate(name, data_dir, download)
    images = {k: read_idx(paths[k], 3, (None, 28, 28)) for k in ("train_images", "test_images")}
    labels = {k: read_idx(paths[k], 1) for k in ("train_labels", "test_labels")}
    spec = _spec(name)
    for split in ("train", "test"):
        n_img, n_lab = len(images[f"{split}_images"]), len(labels[f"{split}_labels"])
        if n_img != n_lab:
            raise DigitkitError(
                f"{paths[split + '_images']} holds {n_img} images but "
                f"{paths[split + '_labels']} holds {n_lab} labels"
            )
        top = int(labels[f"{split}_labels"].max(initial=0))
        if top >= len(spec.class_names):
            raise DigitkitError(f"{paths[split + '_labels']}: label {top} is out of range 0..{len(spec.class_names) - 1}")
    return Dataset(
        name=name,
        x_train=images["train_images"], y_train=labels["train_labels"],
        x_test=images["test_images"], y_test=labels["test_labels"],
        class_names=spec.class_names,
        source=str(paths["train_images"].parent),
    )


def split_validation(x: np.ndarray, y: np.ndarray, size: int | float = 5000, seed: int = 0):
    """Carve a validation split from training data: returns (x_train, y_train, x_val, y_val).

    ``size`` is a count or a fraction. The split is a seeded shuffle, so it is the same for every run
    with the same seed, and the test set never takes part.
    """
    n_val = int(round(size * len(x))) if isinstance(size, float) and size < 1 else int(size)
    if not 0 <= n_val < len(x):
        raise DigitkitError(f"validation size {size} does not fit {len(x)} training examples")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]
