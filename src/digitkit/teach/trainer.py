"""Training in the background for the Teach page: one job at a time in a worker process (CPU work
never runs in the server), started with the server so its imports are done before anyone presses
Train. It fine-tunes a digit run (``--init``) so that 10–20 drawings per class are enough, then
writes what `digitkit train` writes after training (verify.after_training), plus the reference
answers and the Core ML file a download needs.

The worker reports typed events; :class:`Trainer` folds them into one typed :class:`TeachState`,
which the page reads (JSON) and follows (server-sent events).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from digitkit import DigitkitError
from digitkit.runs import Run
from digitkit.teach.workspace import RUN_PREFIX, TeachError, Workspace

PROGRESS_SECONDS = 0.5  # how often the worker reports progress within an epoch
BUSY = ("queued", "training", "exporting")


# -- what the worker reports -------------------------------------------------------------------
@dataclass
class Idle:
    pass


@dataclass
class Started:
    epochs: int


@dataclass
class Step:
    fraction: float
    seconds_left: float | None


@dataclass
class EpochDone:
    epoch: int
    epochs: int
    metrics: dict[str, float]  # loss, accuracy, val_loss, val_accuracy (those the epoch has)


@dataclass
class Trained:
    """The model and its ONNX file are ready to try; the Core ML file follows."""

    run: str
    onnx: str
    test_accuracy: float | None
    test_images: int
    labels: list[str]


@dataclass
class CoreMLWritten:
    coreml: str


@dataclass
class Cancelled:
    pass


@dataclass
class Failed:
    message: str


Event = Idle | Started | Step | EpochDone | Trained | CoreMLWritten | Cancelled | Failed


@dataclass
class TeachState:
    """What the page shows: the job's status and progress, and the latest trained model."""

    status: str = "starting"  # starting, idle, queued, training, exporting, stopped
    message: str = "getting ready"
    notice: str | None = None
    error: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    fraction: float | None = None
    seconds_left: float | None = None
    started: float | None = None
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    train_seconds: float | None = None
    run: str | None = None
    labels: list[str] | None = None
    test_accuracy: float | None = None
    test_images: int | None = None
    trained_at: str | None = None
    onnx: str | None = None
    coreml: str | None = None

    def json(self) -> dict:
        return dataclasses.asdict(self)


def finished_state(run: Run) -> dict:
    """The fields of :class:`TeachState` for a run trained before the server started."""
    try:
        onnx, coreml = run.export_path(".onnx"), run.export_path(".mlpackage")
        return {"run": str(run.path), "labels": run.labels, "test_accuracy": run.test_accuracy,
                "test_images": len(run.test_split()[1]), "trained_at": trained_at(run.path.name),
                "onnx": str(onnx) if onnx.is_file() else None, "coreml": str(coreml) if coreml.is_dir() else None}
    except DigitkitError:
        return {}


def trained_at(run_name: str) -> str:
    """teach-20261130-043000 → 2026-11-30 04:30:00 (what the page shows of a run)."""
    stamp = run_name.removeprefix(RUN_PREFIX)
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.strptime(stamp, "%Y%m%d-%H%M%S"))
    except ValueError:
        return stamp


# -- the worker process ------------------------------------------------------------------------
class _Cancel(Exception):
    pass


def _worker(jobs, events, cancel) -> None:
    """Imports once, then trains and exports each job it is given. It checks for Cancel after every
    step (a few milliseconds), so a cancel acts within a second."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    from digitkit.train import TrainConfig

    events.put(Idle())
    while (job := jobs.get()) is not None:
        cancel.clear()
        config = TrainConfig.from_preset(**job)
        try:
            _train_and_ship(config, events, cancel)
        except _Cancel:
            shutil.rmtree(Run.staged_path(config.runs_dir, config.name), ignore_errors=True)
            events.put(Cancelled())
        except DigitkitError as err:
            events.put(Failed(str(err)))
        except Exception as err:  # noqa: BLE001  (the worker must survive to take the next job)
            events.put(Failed(f"training failed ({type(err).__name__}: {err})"))


def _train_and_ship(config, events, cancel) -> None:
    from digitkit.train import train
    from digitkit.verify import after_training

    events.put(Started(config.epochs))
    clock = {"start": None, "reported": 0.0}

    def step(epoch, done, steps):
        if cancel.is_set():
            raise _Cancel
        now = time.monotonic()
        clock["start"] = clock["start"] or now
        if now - clock["reported"] >= PROGRESS_SECONDS:
            clock["reported"] = now
            fraction = (epoch * steps + done) / (config.epochs * steps)
            elapsed = now - clock["start"]
            events.put(Step(fraction, elapsed * (1 - fraction) / fraction if elapsed > 1 else None))

    def epoch_end(epoch, model, logs):
        metrics = {k: float(logs[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs}
        events.put(EpochDone(epoch + 1, config.epochs, metrics))

    run = train(config, on_epoch_end=epoch_end, on_step=step, quiet=True)

    def ready(onnx: Path) -> None:
        events.put(Trained(str(run.path), str(onnx), run.test_accuracy, len(run.test_split()[1]), run.labels))

    _, coreml = after_training(run, reference=True, coreml=True, on_onnx=ready)
    events.put(CoreMLWritten(str(coreml)))


# -- the server's side -------------------------------------------------------------------------
class Trainer:
    """One background training job at a time, in a worker process; its progress as a :class:`TeachState`."""

    def __init__(self, workspace: Workspace, init: str | None):
        self.workspace, self.init = workspace, init
        self.lock = threading.Lock()
        self.version = 0
        self.state = TeachState()
        latest = workspace.latest_run()
        if latest is not None:
            self.state = dataclasses.replace(self.state, **finished_state(latest))
        if workspace.interrupted:
            self.state.notice = "The last training was interrupted when the server stopped; press Train to train again."
        context = multiprocessing.get_context("spawn")
        self.jobs, self.events, self.cancel_flag = context.Queue(), context.Queue(), context.Event()
        self.process = context.Process(target=_worker, args=(self.jobs, self.events, self.cancel_flag), daemon=True)
        self.process.start()
        self.listener = threading.Thread(target=self._listen, daemon=True)
        self.listener.start()

    def _set(self, **changes) -> None:
        with self.lock:
            self.state = dataclasses.replace(self.state, **changes)
            self.version += 1

    def _listen(self) -> None:
        while True:
            try:
                event = self.events.get(timeout=1)
            except queue.Empty:
                if not self.process.is_alive() and self.state.status != "stopped":
                    self._set(status="stopped", message="the training worker stopped; restart the server")
                continue
            except (EOFError, OSError):
                return
            self._apply(event)

    def _apply(self, event: Event) -> None:
        match event:
            case Idle():
                self._set(status="idle", message="")
            case Started(epochs):
                self._set(status="training", epoch=0, epochs=epochs, fraction=0.0, seconds_left=None,
                          message="training", started=time.time(), notice=None)
            case Step(fraction, seconds_left):
                self._set(fraction=fraction, seconds_left=seconds_left)
            case EpochDone(epoch, epochs, metrics):
                self._set(epoch=epoch, epochs=epochs, **metrics, message=f"epoch {epoch}/{epochs}")
            case Trained():
                took = round(time.time() - (self.state.started or time.time()), 1)
                self._set(status="exporting", message="writing the Core ML file", coreml=None, train_seconds=took,
                          fraction=1.0, seconds_left=None, trained_at=trained_at(Path(event.run).name),
                          **dataclasses.asdict(event))
            case CoreMLWritten(coreml):
                self._set(status="idle", message="", coreml=coreml)
            case Cancelled():
                self._set(status="idle", message="Training cancelled; the model from before is still the one to try.",
                          fraction=None, seconds_left=None)
            case Failed(message):
                self._set(status="idle", message=message, error=message, fraction=None, seconds_left=None)

    def start(self) -> None:
        with self.lock:
            if self.state.status in BUSY:
                raise TeachError("a model is being trained already; wait for it, or cancel it", 409)
            if self.state.status == "stopped":
                raise TeachError("the training worker stopped; restart the server", 503)
        self.workspace.check_trainable()
        job = {"preset": "transfer", "data": str(self.workspace.data), "runs_dir": str(self.workspace.runs),
               "name": f"{RUN_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}", "init": self.init,
               "dataset_name": self.workspace.model_name}
        self._set(status="queued", message="starting", error=None, epoch=0)
        self.jobs.put(job)

    def cancel(self) -> None:
        if self.state.status not in ("training", "queued"):
            raise TeachError("no training to cancel", 409)
        self.cancel_flag.set()

    def snapshot(self) -> tuple[int, dict]:
        """The state's version (it grows with every change) and the state as JSON."""
        with self.lock:
            return self.version, self.state.json()

    def close(self) -> None:
        try:
            self.jobs.put(None)
        except (OSError, ValueError):
            pass
        self.process.join(2)
        if self.process.is_alive():
            self.process.terminate()
