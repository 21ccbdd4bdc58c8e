"""Teach it in the browser: the workspace of drawn examples, and training in the background.

A workspace (``--workspace DIR``, default ``./teach``) is a folder-per-class dataset plus the runs
trained from it:

    DIR/data/<class>/<time>-<id>.png    one drawing each, as the page drew it
    DIR/runs/teach-<time>/              a run folder (model.keras, ... and its ONNX and Core ML exports)

Everything the page shows is read back from these files, so nothing is lost when the page reloads
or the server restarts, and ``digitkit train --data DIR/data`` trains on the same drawings later.

Training runs in a worker process (one job at a time; CPU work never runs in the server), started
when the server starts so its imports are done before anyone presses Train, and fine-tunes a digit
run (``--init``) so that 10–20 drawings per class are enough.
"""

from __future__ import annotations

import io
import multiprocessing
import queue
import re
import secrets
import shutil
import threading
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
        for partial in self.runs.glob(".teach-*.partial"):  # a training the server did not see end
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


# -- the training worker ---------------------------------------------------------------------------
class Cancelled(Exception):
    pass


PROGRESS_SECONDS = 0.5  # how often the worker reports progress within an epoch


def _worker(jobs, events, cancel) -> None:
    """The worker process: imports once, then trains and exports each job it is given. It checks for
    Cancel after every step (a few milliseconds), so a cancel acts within a second."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    from digitkit.classifier import KerasClassifier
    from digitkit.export import export
    from digitkit.train import TrainConfig, train
    from digitkit.verify import Reference, reference_path

    events.put({"type": "idle"})
    while True:
        job = jobs.get()
        if job is None:
            return
        cancel.clear()
        config = TrainConfig.from_preset(**job)
        try:
            events.put({"type": "started", "epochs": config.epochs})
            clock = {"start": None, "reported": 0.0}

            def step(epoch, done, steps):
                if cancel.is_set():
                    raise Cancelled
                now = time.monotonic()
                clock["start"] = clock["start"] or now
                if now - clock["reported"] >= PROGRESS_SECONDS:
                    clock["reported"] = now
                    fraction = (epoch * steps + done) / (config.epochs * steps)
                    elapsed = now - clock["start"]
                    events.put({"type": "step", "fraction": fraction,
                                "seconds_left": elapsed * (1 - fraction) / fraction if elapsed > 1 else None})

            def epoch_end(epoch, model, logs):
                events.put({"type": "epoch", "epoch": epoch + 1, "epochs": config.epochs,
                            **{k: logs[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs}})

            run = train(config, on_epoch_end=epoch_end, on_step=step, quiet=True)
            onnx_path = export(run.path, "onnx")
            trained = KerasClassifier.load(run.path)
            Reference.of(trained).save(reference_path(onnx_path))
            events.put({"type": "ready", "run": str(run.path), "onnx": str(onnx_path),
                        "test_accuracy": run.test_accuracy, "test_images": len(run.test_split()[1]),
                        "labels": run.labels})
            coreml = export(run.path, "coreml")
            events.put({"type": "coreml", "run": str(run.path), "coreml": str(coreml)})
        except Cancelled:
            shutil.rmtree(Run.staged_path(config.runs_dir, config.name), ignore_errors=True)
            events.put({"type": "cancelled"})
        except DigitkitError as err:
            events.put({"type": "error", "message": str(err)})
        except Exception as err:  # noqa: BLE001  (the worker must survive to take the next job)
            events.put({"type": "error", "message": f"training failed ({type(err).__name__}: {err})"})


def _when(run_name: str) -> str:
    """teach-20261130-043000 → 2026-11-30 04:30:00 (what the page shows of a run)."""
    stamp = run_name.removeprefix("teach-")
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.strptime(stamp, "%Y%m%d-%H%M%S"))
    except ValueError:
        return stamp


class Trainer:
    """One background training job at a time, in a worker process; its progress as a state dict."""

    def __init__(self, workspace: Workspace, init: str | None):
        self.workspace, self.init = workspace, init
        self.lock = threading.Lock()
        self.version = 0
        self.state: dict = {"status": "starting", "message": "getting ready"}
        latest = workspace.latest_run()
        if latest is not None:
            self.state |= self._finished_state(latest)
        if workspace.interrupted:
            self.state["notice"] = "The last training was interrupted when the server stopped; press Train to train again."
        context = multiprocessing.get_context("spawn")
        self.jobs, self.events, self.cancel_flag = context.Queue(), context.Queue(), context.Event()
        self.process = context.Process(target=_worker, args=(self.jobs, self.events, self.cancel_flag), daemon=True)
        self.process.start()
        self.listener = threading.Thread(target=self._listen, daemon=True)
        self.listener.start()

    def _finished_state(self, run: Run) -> dict:
        """What the page needs of a run trained before the server started."""
        from digitkit.export import FORMATS

        try:
            onnx, coreml = run.export_path(FORMATS["onnx"]), run.export_path(FORMATS["coreml"])
            return {"run": str(run.path), "labels": run.labels, "test_accuracy": run.test_accuracy,
                    "test_images": len(run.test_split()[1]), "trained_at": _when(run.path.name),
                    "onnx": str(onnx) if onnx.is_file() else None, "coreml": str(coreml) if coreml.is_dir() else None}
        except DigitkitError:
            return {}

    def _set(self, **changes) -> None:
        with self.lock:
            self.state = {**self.state, **changes}
            self.version += 1

    def _listen(self) -> None:
        while True:
            try:
                event = self.events.get(timeout=1)
            except queue.Empty:
                if not self.process.is_alive() and self.state["status"] != "stopped":
                    self._set(status="stopped", message="the training worker stopped; restart the server")
                continue
            except (EOFError, OSError):
                return
            kind = event.pop("type")
            if kind == "idle":
                self._set(status="idle", message="")
            elif kind == "started":
                self._set(status="training", epoch=0, epochs=event["epochs"], fraction=0.0, seconds_left=None,
                          message="training", started=time.time(), notice=None)
            elif kind == "step":
                self._set(**event)
            elif kind == "epoch":
                self._set(**event, message=f"epoch {event['epoch']}/{event['epochs']}")
            elif kind == "ready":
                took = round(time.time() - self.state.get("started", time.time()), 1)
                self._set(status="exporting", message="writing the Core ML file", coreml=None, train_seconds=took,
                          fraction=1.0, seconds_left=None, trained_at=_when(Path(event["run"]).name),
                          **event)
            elif kind == "coreml":
                self._set(status="idle", message="", coreml=event["coreml"])
            elif kind == "cancelled":
                self._set(status="idle", message="Training cancelled; the model from before is still the one to try.",
                          fraction=None, seconds_left=None)
            elif kind == "error":
                self._set(status="idle", message=event["message"], error=event["message"], fraction=None,
                          seconds_left=None)

    def start(self) -> None:
        with self.lock:
            if self.state["status"] in ("training", "exporting", "queued"):
                raise TeachError("a model is being trained already; wait for it, or cancel it", 409)
            if self.state["status"] == "stopped":
                raise TeachError("the training worker stopped; restart the server", 503)
        self.workspace.check_trainable()
        job = {"preset": "transfer", "data": str(self.workspace.data), "runs_dir": str(self.workspace.runs),
               "name": f"teach-{time.strftime('%Y%m%d-%H%M%S')}", "init": self.init,
               "dataset_name": self.workspace.model_name}
        self._set(status="queued", message="starting", error=None, epoch=0)
        self.jobs.put(job)

    def cancel(self) -> None:
        if self.state["status"] not in ("training", "queued"):
            raise TeachError("no training to cancel", 409)
        self.cancel_flag.set()

    def snapshot(self) -> tuple[int, dict]:
        with self.lock:
            return self.version, dict(self.state)

    def close(self) -> None:
        try:
            self.jobs.put(None)
        except (OSError, ValueError):
            pass
        self.process.join(2)
        if self.process.is_alive():
            self.process.terminate()

