"""Reading a Core ML package's files safely: every path stays inside the package, every read is a
regular file of bounded size (a crafted package must not read /etc/passwd, /dev/zero or a FIFO)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from digitkit import DigitkitError

MAX_SPEC_BYTES = 64 * 1024 * 1024  # a digit classifier's spec is a few KB; refuse what could exhaust memory
MAX_WEIGHT_BYTES = 512 * 1024 * 1024


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """A regular file's bytes, refusing devices, FIFOs and files over ``limit`` (never reads without end)."""
    try:
        info = path.stat()
    except OSError as err:
        raise DigitkitError(f"{path}: cannot read {what} ({err.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise DigitkitError(f"{path}: {what} is not a regular file")
    if info.st_size > limit:
        raise DigitkitError(f"{path}: {what} is {info.st_size:,} bytes, over the {limit:,} accepted")
    try:
        with open(path, "rb") as f:
            return f.read(limit + 1)[:limit]
    except OSError as err:
        raise DigitkitError(f"{path}: cannot read {what} ({err.strerror})") from None


def inside(package: Path, relative: str, what: str) -> Path:
    """``package / relative``, refusing absolute paths and paths that leave the package (``..``, symlinks)."""
    if not relative or Path(relative).is_absolute():
        raise DigitkitError(f"{package}: {what} path {relative!r} must be relative to the package")
    resolved = (package / relative).resolve()
    if not resolved.is_relative_to(package.resolve()):
        raise DigitkitError(f"{package}: {what} path {relative!r} points outside the package")
    return resolved


def package_model(path: Path) -> Path:
    manifest = path / "Manifest.json"
    if not manifest.is_file():
        raise DigitkitError(f"{path}: not a Core ML package (no Manifest.json)")
    try:
        info = json.loads(read_bounded(manifest, 1024 * 1024, "package manifest"))
        root = info["itemInfoEntries"][info["rootModelIdentifier"]]["path"]
        if not isinstance(root, str):
            raise TypeError("the root model's path is not a string")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise DigitkitError(f"{manifest}: unreadable package manifest ({type(err).__name__}: {err})") from None
    if Path(root).is_absolute():
        raise DigitkitError(f"{path}: model path {root!r} must be relative to the package")
    model = inside(path, f"Data/{root}", "model")
    if not model.is_file():
        raise DigitkitError(f"{path}: the package's model file {model} is missing")
    return model
