"""The Teach workspace: the drawn examples of each class, and the runs trained from them.

A workspace (``--workspace DIR``, default ``./teach``) is a folder-per-class dataset plus the runs
trained from it:

    DIR/data/<class>/<time>-<id>.png    one drawing each, as the page drew it
    DIR/runs/teach-<time>/              a run folder (model.keras, ... and its ONNX and Core ML exports)

Everything the page shows is read back from these files, so nothing is lost when the page reloads
or the server restarts, and ``digitkit train --data DIR/data`` trains on the same drawings later.

Training runs in :mod:`digitkit.teach.trainer`.
"""

from __future__ import annotations

import io
import re
import secrets
import shutil
import time
import zipfile
from pathlib import Path

from digitkit import DigitkitError
from digitkit.data.folders import check_label
from digitkit.files import atomic_write_bytes
from digitkit.runs import Run

MIN_PER_CLASS = 5  # a class needs this many drawings before training (3 are set aside to validate and test)
MIN_CLASSES = 2
MAX_EXAMPLE_BYTES = 512 * 1024
EXAMPLE_NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}\.png")
RUN_PREFIX = "teach-"  # runs are named teach-<time>


class TeachError(DigitkitError):
    """A request the workspace cannot take; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class Workspace:
    def __init__(self, root: str | Path, model_name: str | None = None):
        self.root = Path(root)
        # Names the exported files (ShapesClassifier.mlpackage for --workspace shapes), never "data".
        self.model_name = model_name or self.root.resolve().name or "teach"
        self.data = self.root / "data"
        self.runs = self.root / "runs"
        try:
            self.data.mkdir(parents=True, exist_ok=True)
            self.runs.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DigitkitError(f"cannot use {self.root} as a workspace ({err.strerror})") from None
        self.interrupted = False  # a training was under way when the server last stopped
        for partial in Run.staged_paths(self.runs, RUN_PREFIX):  # a training the server did not see end
            shutil.rmtree(partial, ignore_errors=True)
            self.interrupted = True

    # -- classes and examples --------------------------------------------------------------------
    def classes(self) -> list[dict]:
        out = []
        for folder in sorted(p for p in self.data.iterdir() if p.is_dir() and not p.name.startswith(".")):
            examples = sorted(p.name for p in folder.iterdir() if EXAMPLE_NAME.fullmatch(p.name))
            others = sum(1 for p in folder.iterdir() if p.is_file() and not EXAMPLE_NAME.fullmatch(p.name))
            out.append({"name": folder.name, "count": len(examples) + others, "examples": examples,
                        "needs": max(0, MIN_PER_CLASS - len(examples) - others)})
        return out

    def _class_folder(self, name: str) -> Path:
        folder = self.data / name
        if not isinstance(name, str) or name.startswith(".") or not folder.is_dir() or folder.parent != self.data:
            raise TeachError(f"there is no class {name!r}; add it first", 404)
        return folder

    def add_class(self, name) -> dict:
        if not isinstance(name, str) or not name:
            raise TeachError("give the class a name")
        try:
            check_label(name, self.data)
        except DigitkitError:
            raise TeachError(f"{name!r} cannot be a class name: use up to 64 characters, no commas, slashes or "
                             "control characters, not starting with a dot or with or ending in a space") from None
        if any(c["name"].lower() == name.lower() for c in self.classes()):
            raise TeachError(f"there is already a class called {name!r}", 409)
        try:
            (self.data / name).mkdir()
        except (OSError, UnicodeEncodeError) as err:  # too long in bytes for the file system, say
            raise TeachError(f"{name!r} cannot be a folder name here ({getattr(err, 'strerror', None) or err}); "
                             "choose a shorter or plainer name") from None
        return {"name": name, "count": 0, "examples": [], "needs": MIN_PER_CLASS}

    def add_example(self, name: str, png: bytes) -> str:
        from digitkit.data.normalize import BlankImage, NormalizeError, load_image, normalize

        folder = self._class_folder(name)
        if len(png) > MAX_EXAMPLE_BYTES:
            raise TeachError(f"a drawing must be under {MAX_EXAMPLE_BYTES // 1024} KiB", 413)
        try:
            normalize(load_image(png))  # refuse what training could not read, now rather than later
        except BlankImage:
            raise TeachError("the drawing is empty: draw something first") from None
        except NormalizeError as err:
            raise TeachError(f"not a usable image: {err}", 415) from None
        file = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}.png"
        atomic_write_bytes(folder / file, png)
        return file

    def example_path(self, name: str, file: str) -> Path:
        folder = self._class_folder(name)
        if not isinstance(file, str) or not EXAMPLE_NAME.fullmatch(file) or not (folder / file).is_file():
            raise TeachError(f"class {name!r} has no drawing {file!r}", 404)
        return folder / file

    def remove_example(self, name: str, file: str) -> None:
        self.example_path(name, file).unlink()  # only drawings this page saved (their names say so)

    def check_trainable(self) -> list[dict]:
        classes = self.classes()
        # 409: a well-formed request the workspace is not ready for yet.
        if len(classes) < MIN_CLASSES:
            raise TeachError(f"add at least {MIN_CLASSES} classes to train a model "
                             f"(there {'is' if len(classes) == 1 else 'are'} {len(classes)})", 409)
        short = [c for c in classes if c["needs"]]
        if short:
            raise TeachError("draw more examples first: " + "; ".join(
                f"{c['name']} needs {c['needs']} more" for c in short), 409)
        return classes

    # -- results ---------------------------------------------------------------------------------
    def latest_run(self) -> Run | None:
        try:
            return Run.newest(self.runs)
        except DigitkitError:
            return None

    def dataset_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for c in self.classes():
                for file in sorted((self.data / c["name"]).iterdir()):
                    if file.is_file():
                        archive.write(file, f"{self.root.name or 'teach'}/{c['name']}/{file.name}")
        return buffer.getvalue()


def zip_folder(folder: Path, beside: list[Path] = ()) -> bytes:
    """A folder (an .mlpackage) as a zip holding it, and the files ``beside`` it at the top."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file() and not file.is_symlink():
                archive.write(file, str(Path(folder.name) / file.relative_to(folder)))
        for file in beside:
            archive.write(file, file.name)
    return buffer.getvalue()
