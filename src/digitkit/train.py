"""Stage 3: training. ``train(TrainConfig(...))`` trains a Keras model and writes a run folder.

The loop is a lean torch loop around the Keras model (on the torch backend a Keras model *is* a
``torch.nn.Module``): the data sits on the device as one tensor, each step is forward, backward and a
fused optimizer step, and Keras' callbacks (best checkpoint, early stopping) run at epoch ends.
``keras.Model.fit`` does the same work with far more per-step overhead (see benchmarks/train_speed.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass

import digitkit  # noqa: F401  (selects the torch backend before Keras loads)
import keras
import numpy as np
import torch
import torch.nn.functional as F

from digitkit import DigitkitError, __version__
from digitkit.augment import Augmentation, augment_batch
from digitkit.data import load_dataset, split_validation
from digitkit.models import MODELS, build_model
from digitkit.runs import Run, atomic_write_json, save_model_atomic
from digitkit.ui import console, epoch_progress


@dataclass(frozen=True)
class Recipe:
    """How to train: the model and its optimisation settings."""

    model: str
    epochs: int
    batch_size: int
    lr: float
    schedule: str = "onecycle"  # "onecycle" or "constant"
    optimizer: str = "adamw"  # "adamw" or "adam"
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    augment: bool = True


PRESETS: dict[str, Recipe] = {
    "fast": Recipe("digitnet-small", epochs=2, batch_size=128, lr=1e-2, augment=False),
    "default": Recipe("digitnet", epochs=8, batch_size=256, lr=8e-3),
    "best": Recipe("digitnet", epochs=16, batch_size=256, lr=8e-3),
    # The tutorial's own recipe: Adam at its default rate, no schedule, no augmentation.
    "tutorial": Recipe("tutorial", epochs=10, batch_size=200, lr=1e-3, schedule="constant",
                       optimizer="adam", weight_decay=0.0, label_smoothing=0.0, augment=False),
}
# Training a model by name alone uses this preset.
MODEL_PRESET = {"digitnet": "default", "digitnet-small": "fast", "digitnet-large": "best",
                "tutorial": "tutorial", "keras-example": "tutorial"}


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` in the run folder."""

    # The recipe's fields default to the "default" preset's.
    model: str = PRESETS["default"].model
    epochs: int = PRESETS["default"].epochs
    batch_size: int = PRESETS["default"].batch_size
    lr: float = PRESETS["default"].lr
    schedule: str = PRESETS["default"].schedule
    optimizer: str = PRESETS["default"].optimizer
    weight_decay: float = PRESETS["default"].weight_decay
    label_smoothing: float = PRESETS["default"].label_smoothing
    augment: bool = PRESETS["default"].augment
    preset: str | None = "default"
    seed: int = 0
    dataset: str = "mnist"
    data_dir: str | None = None
    val_size: int = 5000
    patience: int = 4
    limit: int | None = None  # train on the first N training examples (quick checks)
    name: str | None = None
    runs_dir: str = "runs"
    overwrite: bool = False

    @classmethod
    def from_preset(cls, preset: str | None = None, model: str | None = None, **overrides) -> "TrainConfig":
        """A config from a preset (or the given model's own preset), with explicit overrides.

        ``overrides`` whose value is None are ignored, so CLI flags that were not given fall through.
        """
        if preset is None:
            if model is not None and model not in MODELS:
                raise DigitkitError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
            preset = MODEL_PRESET.get(model or "digitnet", "default")
        if preset not in PRESETS:
            raise DigitkitError(f"unknown preset {preset!r}; choose one of: {', '.join(p for p in PRESETS)}")
        values = dataclasses.asdict(PRESETS[preset]) | {"preset": preset}
        if model is not None:
            values["model"] = model
        values |= {k: v for k, v in overrides.items() if v is not None}
        return cls(**values)

    def validate(self) -> None:
        if self.model not in MODELS:
            raise DigitkitError(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise DigitkitError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise DigitkitError(f"--lr must be positive, got {self.lr}")
        if self.schedule not in ("onecycle", "constant"):
            raise DigitkitError(f"unknown schedule {self.schedule!r}; use onecycle or constant")
        if self.optimizer not in ("adamw", "adam"):
            raise DigitkitError(f"unknown optimizer {self.optimizer!r}; use adamw or adam")
        if self.limit is not None and self.limit < 1:
            raise DigitkitError(f"--limit must be at least 1, got {self.limit}")


def device() -> torch.device:
    """The device Keras placed its variables on: CUDA when available, else CPU."""
    from keras.src.backend.torch.core import get_device

    return torch.device(get_device())


def to_tensor(images: np.ndarray, dev: torch.device) -> torch.Tensor:
    """uint8 (N, 28, 28) images → float32 (N, 28, 28, 1) in 0..1 on ``dev``."""
    return torch.from_numpy(images).to(dev).float().div_(255).unsqueeze(-1)


def _loss(probs: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    # The models end in softmax (the exported contract), so the loss takes log-probabilities.
    log_p = torch.log(probs.clamp_min(1e-7))
    return F.cross_entropy(log_p, labels, label_smoothing=smoothing) if smoothing else F.nll_loss(log_p, labels)


@torch.no_grad()
def predict_probs(model: keras.Model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Class probabilities for (N, 28, 28, 1) images in 0..1, in inference mode."""
    return torch.cat([model(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)])


def _evaluate(model: keras.Model, x: torch.Tensor, y: torch.Tensor, smoothing: float) -> tuple[float, float]:
    # As in Keras, val_loss is the training loss (label smoothing included): plain cross-entropy
    # rises late in a smoothed run while accuracy still improves, and would pick too early an epoch.
    probs = predict_probs(model, x)
    return _loss(probs, y, smoothing).item(), (probs.argmax(1) == y).float().mean().item()


def _optimizer(config: TrainConfig, model: keras.Model, steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.lr)
    else:
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.25)
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return opt, sched


def train(config: TrainConfig, on_epoch_end=None, quiet: bool = False) -> Run:
    """Train a model as ``config`` says and write its run folder; returns the :class:`Run`.

    ``on_epoch_end(epoch, model, logs)`` is called after each epoch (benchmarks time accuracy with it).
    """
    from digitkit.evaluate import evaluate_model, save_report_figures

    config.validate()
    keras.utils.set_random_seed(config.seed)
    dev = device()
    data = load_dataset(config.dataset, config.data_dir)  # before the run folder: bad data writes nothing
    run = Run.create(config.runs_dir, config.name or _default_name(config.model), overwrite=config.overwrite)
    x_tr, y_tr, x_val, y_val = split_validation(data.x_train, data.y_train, config.val_size, config.seed)
    if config.limit:
        x_tr, y_tr = x_tr[: config.limit], y_tr[: config.limit]
    x_train, x_valid = to_tensor(x_tr, dev), to_tensor(x_val, dev)
    y_train, y_valid = (torch.from_numpy(a.astype(np.int64)).to(dev) for a in (y_tr, y_val))

    model = build_model(config.model, data.num_classes)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    opt, sched = _optimizer(config, model, steps_per_epoch * config.epochs)
    aug = Augmentation() if config.augment else None
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    checkpoint = run.path / "checkpoint.keras"
    callbacks = keras.callbacks.CallbackList(
        [
            keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience),
        ],
        model=model,
    )
    atomic_write_json(run.path / "config.json", dataclasses.asdict(config) | {"digitkit": __version__})
    if not quiet:
        console.print(
            f"Training [bold]{config.model}[/] ({model.count_params():,} parameters) on {data.name}: "
            f"{len(x_train):,} train / {len(x_valid):,} validation images, {config.epochs} epochs, "
            f"batch {config.batch_size}, device {dev.type}"
        )

    # Mixed precision on CUDA (bf16 matmuls and convolutions); CPUs keep fp32, which is faster there.
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    history: list[dict] = []
    train_seconds = 0.0
    model.stop_training = False
    callbacks.on_train_begin()
    for epoch in range(config.epochs):
        callbacks.on_epoch_begin(epoch)
        start = time.perf_counter()
        order = torch.randperm(len(x_train), device=dev, generator=gen)
        total_loss = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev)
        with epoch_progress(f"epoch {epoch + 1}/{config.epochs}", steps_per_epoch, disable=quiet) as advance:
            for step in range(steps_per_epoch):
                idx = order[step * config.batch_size : (step + 1) * config.batch_size]
                xb, yb = x_train[idx], y_train[idx]
                if aug is not None:
                    xb = augment_batch(xb, aug, gen)
                with autocast:
                    probs = model(xb, training=True)
                    loss = _loss(probs, yb, config.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                # Accumulate on the device: reading a value back each step would sync.
                total_loss += loss.detach() * len(idx)
                correct += (probs.detach().argmax(1) == yb).sum()
                advance()
        if dev.type == "cuda":
            torch.cuda.synchronize()  # so the epoch's time includes its queued GPU work
        train_seconds += time.perf_counter() - start
        val_loss, val_acc = _evaluate(model, x_valid, y_valid, config.label_smoothing)
        logs = {
            "loss": total_loss.item() / len(x_train),
            "accuracy": correct.item() / len(x_train),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "lr": opt.param_groups[0]["lr"],
            "seconds": train_seconds,
        }
        history.append({"epoch": epoch + 1, **logs})
        if not quiet:
            console.print(
                f"epoch {epoch + 1:>2}/{config.epochs}  loss {logs['loss']:.4f}  acc {logs['accuracy']:.4f}  "
                f"val_loss {val_loss:.4f}  val_acc {val_acc:.4f}  ({train_seconds:.1f} s)"
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, logs)
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            if not quiet:
                console.print(f"Early stopping: val_loss has not improved for {config.patience} epochs.")
            break
    callbacks.on_train_end()

    best = keras.saving.load_model(checkpoint)  # the epoch with the lowest validation loss
    save_model_atomic(best, run.model_path)
    checkpoint.unlink()
    atomic_write_json(run.path / "history.json", history)
    report, probs = evaluate_model(best, data)
    metrics = report | {
        "model": config.model,
        "parameters": int(best.count_params()),
        "train_seconds": round(train_seconds, 2),
        "epochs_run": len(history),
        "best_epoch": int(np.argmin([h["val_loss"] for h in history])) + 1,
        "device": dev.type,
    }
    atomic_write_json(run.path / "metrics.json", metrics)
    save_report_figures(run, data, report, probs, history)
    if not quiet:
        console.print(
            f"Test accuracy [bold]{metrics['test_accuracy']:.2%}[/] (loss {metrics['test_loss']:.4f}); "
            f"{train_seconds:.1f} s of training. Run folder: {run.path}"
        )
    return run


def _default_name(model: str) -> str:
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
