"""``train(config)``: train a Keras model and write its run folder.

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

import digitkit.models  # noqa: F401  (selects the torch backend before Keras loads)
import keras
import numpy as np
import torch
import torch.nn.functional as F

from digitkit import DigitkitError, __version__
from digitkit.data import load_dataset, split_validation
from digitkit.files import atomic_path, atomic_write_json
from digitkit.inference import device, predict_probs, to_tensor
from digitkit.models import build_model, portable
from digitkit.report import save_report_figures, score
from digitkit.runs import MODEL_FILE, Run, load_keras_model
from digitkit.train.augment import Augmentation, augment_batch
from digitkit.train.config import TrainConfig
from digitkit.ui import console, epoch_progress


def _loss(probs: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    # The models end in softmax (the exported contract), so the loss takes log-probabilities.
    log_p = torch.log(probs.clamp_min(1e-7))
    return F.cross_entropy(log_p, labels, label_smoothing=smoothing) if smoothing else F.nll_loss(log_p, labels)


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
    # One-cycle needs a few steps to warm up and anneal; a run that short keeps a constant rate.
    if config.schedule == "onecycle" and steps >= 8:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.25)
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return opt, sched


def train(config: TrainConfig, on_epoch_end=None, quiet: bool = False) -> Run:
    """Train a model as ``config`` says and write its run folder; returns the :class:`Run`.

    The run is built in a hidden folder beside its final place and moved there when complete, so a
    failure or Ctrl-C leaves nothing half-written (and an old run being overwritten stays intact).
    ``on_epoch_end(epoch, model, logs)`` is called after each epoch (benchmarks time accuracy with it).
    """
    config.validate()
    name = config.name or _default_name(config.model)
    target = Run.check_target(config.runs_dir, name, config.overwrite)
    data = load_dataset(config.dataset, config.data_dir)  # before any folder: bad data writes nothing
    staged = Run.staging(config.runs_dir, name)
    try:
        _train_into(staged, config, data, on_epoch_end, quiet)
        run = staged.publish(target, config.overwrite)
    except BaseException:
        staged.discard()
        raise
    if not quiet:
        console.print(f"Run folder: {run.path}")
    return run


def _train_into(run: Run, config: TrainConfig, data, on_epoch_end, quiet: bool) -> None:
    keras.utils.set_random_seed(config.seed)
    dev = device()
    x_tr, y_tr, x_val, y_val = split_validation(data.x_train, data.y_train, config.val_size, config.seed)
    if config.limit:
        x_tr, y_tr = x_tr[: config.limit], y_tr[: config.limit]
    if not len(x_tr):
        raise DigitkitError("no training images left after the validation split")
    x_train, x_valid = to_tensor(x_tr, dev), to_tensor(x_val, dev)
    y_train, y_valid = (torch.from_numpy(a.astype(np.int64)).to(dev) for a in (y_tr, y_val))
    validate = len(x_valid) > 0
    monitor = "val_loss" if validate else "loss"

    model = build_model(config.model, data.num_classes)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    opt, sched = _optimizer(config, model, steps_per_epoch * config.epochs)
    aug = Augmentation() if config.augment else None
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    checkpoint = run.path / "checkpoint.keras"
    callbacks = keras.callbacks.CallbackList(
        [
            keras.callbacks.ModelCheckpoint(checkpoint, monitor=monitor, save_best_only=True),
            keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience),
        ],
        model=model,
    )
    saved_config = dataclasses.asdict(config) | {"labels": list(data.class_names), "digitkit": __version__}
    atomic_write_json(run.path / "config.json", saved_config)
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
        logs = {"loss": total_loss.item() / len(x_train), "accuracy": correct.item() / len(x_train)}
        if not math.isfinite(logs["loss"]):
            raise DigitkitError(f"training diverged in epoch {epoch + 1} (the loss is {logs['loss']}); "
                                f"lower the learning rate (it was {config.lr})")
        if validate:
            logs["val_loss"], logs["val_accuracy"] = _evaluate(model, x_valid, y_valid, config.label_smoothing)
        logs |= {"lr": opt.param_groups[0]["lr"], "seconds": train_seconds}
        history.append({"epoch": epoch + 1, **logs})
        if not quiet:
            shown = "  ".join(f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs)
            console.print(f"epoch {epoch + 1:>2}/{config.epochs}  {shown}  ({train_seconds:.1f} s)")
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, logs)
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            if not quiet:
                console.print(f"Early stopping: {monitor} has not improved for {config.patience} epochs.")
            break
    callbacks.on_train_end()

    # The epoch with the lowest validation loss, saved with Keras' standard layers (see models.portable).
    best = portable(load_keras_model(checkpoint))
    checkpoint.unlink()
    with atomic_path(run.path / MODEL_FILE) as tmp:
        best.save(tmp)
    atomic_write_json(run.path / "history.json", history)
    probs = predict_probs(best, to_tensor(data.x_test, dev)).cpu().numpy()
    report = {"dataset": data.name, **score(probs, data.y_test, data.class_names)}
    metrics = report | {
        "model": config.model,
        "parameters": int(best.count_params()),
        "train_seconds": round(train_seconds, 2),
        "epochs_run": len(history),
        "best_epoch": int(np.argmin([h[monitor] for h in history])) + 1,
        "device": dev.type,
    }
    atomic_write_json(run.path / "metrics.json", metrics)
    save_report_figures(run.path, data.x_test, data.y_test, probs, data.class_names, report, history)
    if not quiet:
        console.print(
            f"Test accuracy [bold]{metrics['test_accuracy']:.2%}[/] (loss {metrics['test_loss']:.4f}); "
            f"{train_seconds:.1f} s of training."
        )


def _default_name(model: str) -> str:
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
