"""Writing files safely: every output goes to a temporary sibling and is renamed when complete, so a
crash or Ctrl-C never leaves a half-written file under the final name."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from digitkit import DigitkitError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publishable(path: Path) -> None:
    """Give a finished temporary file the mode a plain ``open()`` would have (tempfile makes 0600)."""
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())


def unwritable(path: Path, err: OSError) -> DigitkitError:
    """The error for an output whose folder cannot take a new file (read-only, no permission, /proc)."""
    return DigitkitError(f"cannot write {path} ({err.strerror or err}); choose a folder you can write to")


def atomic_write_bytes(path: str | Path, blob: bytes) -> None:
    path = Path(path)
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
            tmp.write(blob)
    except OSError as err:
        raise unwritable(path, err) from None
    try:
        _publishable(Path(tmp.name))
        os.replace(tmp.name, path)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, payload) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode())


class atomic_path:  # noqa: N801  (used as a context manager, like open())
    """``with atomic_path(target) as tmp:`` write ``tmp`` (a file or a folder); it replaces ``target``
    only if the block succeeds. The temporary name keeps the suffix, since some writers (Keras,
    matplotlib, coremltools) check it. Replacing a folder moves the old one aside first and removes
    it only after the new one is in place."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.stem}.", dir=self.path.parent)) / self.path.name
        except OSError as err:
            raise unwritable(self.path, err) from None

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        holder = self.tmp.parent
        try:
            if exc_type is None:
                replace_path(self.tmp, self.path)
        finally:
            shutil.rmtree(holder, ignore_errors=True)


def replace_path(new: Path, target: Path) -> None:
    """Move ``new`` (file or folder) to ``target``, replacing what is there only once ``new`` is whole."""
    new, target = Path(new), Path(target)
    _publishable(new)
    if not (target.is_dir() and not target.is_symlink()):
        os.replace(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, aside / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside / target.name, target)  # put the old one back
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def file_size(path: str | Path) -> int:
    """Bytes in a file, or in all the files of a folder (a .mlpackage)."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return path.stat().st_size
