"""``train(config)``: train a Keras model and write its run folder.

The loop is a lean torch loop around the Keras model (on the torch backend a Keras model *is* a
``torch.nn.Module``): the data sits on the device as one tensor, each step is forward, backward and a
fused optimizer step, and Keras' callbacks (best checkpoint, early stopping) run at epoch ends.
``keras.Model.fit`` does the same work with far more per-step overhead (see benchmarks/train_speed.py).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import digitkit.models  # noqa: F401  (selects the torch backend before Keras loads)
import keras
import torch
import torch.nn.functional as F

from digitkit import ConfigError, DigitkitError, __version__
from digitkit.classifier import KerasClassifier
from digitkit.data import load_dataset, write_idx
from digitkit.data.folders import dataset_name, load_folder
from digitkit.files import atomic_write_json
from digitkit.inference import device, predict_probs
from digitkit.models import base_model, build_model, copy_weights
from digitkit.runs import TEST_FILES, Run
from digitkit.train import distributed
from digitkit.train.augment import Augmentation, augment_batch
from digitkit.train.average import WeightAverage
from digitkit.train.config import TrainConfig
from digitkit.train.finish import finish
from digitkit.train.mix import TrainingData
from digitkit.train.precision import mixed_precision
from digitkit.train.state import STATE_FILE, Session, TrainState
from digitkit.train.twin import TrainingTwin
from digitkit.ui import console, epoch_progress, escape, item_progress, number


def _loss(probs: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy; a label past the last class marks a drawing of no class (a non-digit), whose
    target is equal probabilities for every class (outlier exposure), so it is answered unsure."""
    # The models end in softmax (the exported contract), so the loss takes log-probabilities.
    log_p = torch.log(probs.clamp_min(1e-7))
    classes = probs.shape[1]
    known = F.cross_entropy(log_p, labels.clamp_max(classes - 1), label_smoothing=smoothing, reduction="none")
    return torch.where(labels < classes, known, -log_p.mean(1)).mean()


def _evaluate(session: Session) -> tuple[float, float]:
    # As in Keras, val_loss is the training loss (label smoothing included): plain cross-entropy
    # rises late in a smoothed run while accuracy still improves, and would pick too early an epoch.
    # In the training's arithmetic: bf16 halves this pass, and only picks the best epoch.
    y = session.sets.y_valid
    with mixed_precision(session.dev, session.config.precision):
        probs = predict_probs(session.twin, session.sets.x_valid)
    return _loss(probs, y, session.config.label_smoothing).item(), (probs.argmax(1) == y).float().mean().item()


def _optimizer(config: TrainConfig, model: keras.Model, steps: int):
    # In the model's layer order: model.parameters() orders by generated layer names, which differ
    # with how many models the process built before ("conv2d_10" < "conv2d_9"), and a resumed
    # optimizer state would land on the wrong tensors.
    params = [variable.value for variable in model.trainable_weights]
    if config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.lr)
    else:
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    # Epochs have at least MIN_STEPS steps, enough for one-cycle to warm up and anneal.
    if config.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.25)
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return opt, sched


def train(config: TrainConfig, on_epoch_end=None, quiet: bool = False, on_step=None, prefetched=None) -> Run:
    """Train a model as ``config`` says and write its run folder; returns the :class:`Run`.

    The run is built in a hidden folder beside its final place (``runs/.<name>.partial``) and moved
    there when complete, so a failure leaves nothing half-written under the run's name (and an old
    run being overwritten stays intact). A run interrupted after an epoch keeps its hidden folder
    with the training state, so ``resume`` continues from the last finished epoch. Under torchrun
    the ranks train together (train.distributed) and rank 0 alone writes.
    ``on_epoch_end(epoch, model, logs)`` is called after each epoch (benchmarks time accuracy with it),
    ``on_step(epoch, step, steps_per_epoch)`` after each step (progress and cancelling within a step);
    an exception either raises stops the training. ``prefetched``: the epoch's images being built in
    another process (a :class:`~digitkit.train.prefetch.Prefetch` for this config), as the command
    line does while it imports Keras.
    """
    config.validate()
    ctx = distributed.setup()
    quiet = quiet or not ctx.is_main
    if ctx.active and config.batch_size % ctx.world:
        raise ConfigError("batch_size", f"must be divisible by the number of processes ({ctx.world}), "
                                        f"got {config.batch_size}")
    name = ctx.broadcast(config.name or _default_name(config.model))
    config = dataclasses.replace(config, name=name)
    staged = Run.staged_path(config.runs_dir, name)
    if config.resume:
        config = _resumed_config(config, staged)
    target = Run.check_target(config.runs_dir, name, config.overwrite)
    started = time.perf_counter()
    data = _load_data(config, quiet)  # before any folder: bad data writes nothing
    seconds = {"data": time.perf_counter() - started}
    run = Run.staging(config.runs_dir, name, resume=config.resume) if ctx.is_main else Run(staged)
    try:
        _train_into(run, config, data, on_epoch_end, on_step, quiet, ctx, seconds, prefetched)
        if ctx.is_main:
            (run.path / STATE_FILE).unlink(missing_ok=True)
            run = run.publish(target, config.overwrite)
    except BaseException:
        if ctx.is_main:
            if (run.path / STATE_FILE).is_file():
                console.print(f"[yellow]Stopped; the finished epochs are kept. Continue with: digitkit train "
                              f"--name {escape(name)} --resume[/] (or remove {escape(str(run.path))})")
            else:
                run.discard()
        raise
    ctx.barrier()  # the other ranks return once rank 0 has published the run
    if not quiet:
        console.print(f"Run folder: {escape(str(target))}")
    return Run(target)


def _resumed_config(config: TrainConfig, staged: Path) -> TrainConfig:
    """The settings of the interrupted run (its saved config), to continue it exactly."""
    if not (staged / STATE_FILE).is_file():
        raise ConfigError("resume", f"finds no interrupted run {config.name!r} to continue in {config.runs_dir} "
                                    f"(no {staged / STATE_FILE}); train without resume")
    saved = Run(staged).read_json("config.json")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in fields} | {"resume": True, "overwrite": config.overwrite})


def _load_data(config: TrainConfig, quiet: bool):
    if config.data is None:
        return load_dataset(config.dataset, config.data_dir)
    with item_progress(f"reading {config.data}", disable=quiet) as progress:
        data, report = load_folder(config.data, config.seed, progress)
    if config.dataset_name:
        data.name = dataset_name(config.dataset_name)
    if not quiet:
        for line in report.lines():
            console.print(escape(line))
    return data


def _train_into(run: Run, config: TrainConfig, data, on_epoch_end, on_step, quiet: bool,
                ctx: distributed.Context, seconds: dict, prefetched) -> None:
    """Set up, resume or start, run the epochs, and (rank 0) finish the run."""
    session = _set_up(run, config, data, ctx, seconds, prefetched)
    state = TrainState.load(run.path / STATE_FILE, session.dev) if config.resume else TrainState()
    if config.resume:
        state.restore(session)
    elif ctx.is_main:
        _write_run_settings(run, config, data)
    if not quiet:
        _announce(session, state.epoch)
    _run_epochs(run, session, state, on_epoch_end, on_step, quiet)
    if ctx.is_main:
        seconds["training"] = state.train_seconds
        finish(run, session, state.history, quiet, seconds)


def _set_up(run: Run, config: TrainConfig, data, ctx: distributed.Context, seconds: dict, prefetched) -> Session:
    """The data on the device, the model (fine-tuned from ``config.init``), its optimizer and callbacks."""
    keras.utils.set_random_seed(config.seed)
    dev = device()
    started = time.perf_counter()
    sets = TrainingData(config, data, dev, prefetched.arrays() if prefetched else None)
    seconds["data"] += time.perf_counter() - started
    model = build_model(config.model, data.num_classes)
    if config.init is not None:
        copy_weights(base_model(KerasClassifier.load(config.init).model), model, skip_head=True)
    twin = TrainingTwin(model, sync_batch_norm=ctx.active)
    steps_per_epoch = math.ceil(sets.epoch_size / config.batch_size)
    opt, sched = _optimizer(config, model, steps_per_epoch * config.epochs)
    monitor = "val_loss" if len(sets.x_valid) else "loss"
    checkpointer = keras.callbacks.ModelCheckpoint(run.path / "checkpoint.keras", monitor=monitor, save_best_only=True)
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience)
    callbacks = keras.callbacks.CallbackList([checkpointer, stopper] if ctx.is_main else [], model=model)
    return Session(config, data, sets, model, twin, distributed.wrap(twin, ctx, dev), opt, sched,
                   torch.Generator(device=dev).manual_seed(config.seed), Augmentation() if config.augment else None,
                   checkpointer, stopper, callbacks, steps_per_epoch, dev, ctx,
                   WeightAverage(model, config.average) if config.average else None)


def _announce(session: Session, first_epoch: int) -> None:
    config, ctx, sets = session.config, session.ctx, session.sets
    resumed = f", resuming after epoch {first_epoch}" if config.resume else ""
    ranks = f", {ctx.world} processes" if ctx.active else ""
    console.print(
        f"Training [bold]{config.model}[/] ({session.model.count_params():,} parameters) on "
        f"{escape(session.data.name)}: {sets.base:,}{sets.mix()} train / {len(sets.x_valid):,} validation images per "
        f"epoch, {config.epochs} epoch{'s' if config.epochs != 1 else ''}, batch {config.batch_size}, "
        f"device {session.dev.type}{ranks}{resumed}"
    )


def _run_epochs(run: Run, session: Session, state: TrainState, on_epoch_end, on_step, quiet: bool) -> None:
    """Each epoch: its steps, its validation, the callbacks, the state saved (to resume after it)."""
    config, ctx, model = session.config, session.ctx, session.model
    if session.dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.stop_training = False
    session.callbacks.on_train_begin()
    for epoch in range(state.epoch, config.epochs):
        session.callbacks.on_epoch_begin(epoch)
        start = time.perf_counter()
        totals = _train_epoch(session, epoch, on_step, quiet)
        state.train_seconds += time.perf_counter() - start
        with session.averaged():  # validated, timed by benchmarks and checkpointed: the average, if kept
            logs = _epoch_logs(session, totals, epoch) | {"lr": session.opt.param_groups[0]["lr"],
                                                          "seconds": state.train_seconds}
            state.history.append({"epoch": epoch + 1, **logs})
            if not quiet:
                shown = "  ".join(f"{k} {number(logs[k])}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs)
                console.print(f"epoch {epoch + 1:>2}/{config.epochs}  {shown}  ({state.train_seconds:.1f} s)")
            if on_epoch_end is not None and ctx.is_main:
                on_epoch_end(epoch, model, logs)
            session.callbacks.on_epoch_end(epoch, logs)
        if ctx.is_main:
            state.epoch = epoch + 1
            state.capture(session).save(run.path / STATE_FILE)
        if ctx.broadcast(bool(model.stop_training)):  # rank 0's early-stopping decision, for all
            if not quiet:
                console.print(f"Early stopping: {session.monitor} has not improved for {config.patience} epochs.")
            break
    session.callbacks.on_train_end()


def _train_epoch(session: Session, epoch: int, on_step, quiet: bool) -> torch.Tensor:
    """One epoch's steps; returns this rank's totals: loss sum, correct, images of a class, examples."""
    config, ctx, sets = session.config, session.ctx, session.sets
    last = epoch == config.epochs - 1 and config.epochs > 1
    order = sets.epoch_order(session.gen, config.final_mix if last else 1.0)  # the same on every rank: seeded alike
    totals = torch.zeros(4, device=session.dev)
    autocast = mixed_precision(session.dev, config.precision)
    with epoch_progress(f"epoch {epoch + 1}/{config.epochs}", session.steps_per_epoch, disable=quiet) as advance:
        for step in range(session.steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            idx = batch[ctx.rank :: ctx.world]  # this rank's share of the global batch
            xb, yb = sets.x_train[idx], sets.y_train[idx]
            if session.aug is not None:
                xb = augment_batch(xb, session.aug, session.gen)
            with autocast:
                probs = session.step_module(xb).float()
                loss = _loss(probs, yb, config.label_smoothing)
            session.opt.zero_grad(set_to_none=True)
            loss.backward()
            session.opt.step()
            session.sched.step()
            if session.average is not None:
                session.average.update()
            # Accumulate on the device: reading a value back each step would sync.
            totals[0] += loss.detach() * len(idx)
            known = yb < probs.shape[1]  # accuracy over the images of a class (non-digits have none)
            totals[1] += ((probs.detach().argmax(1) == yb) & known).sum()
            totals[2] += known.sum()
            totals[3] += len(idx)
            advance()
            if on_step is not None and ctx.is_main:
                on_step(epoch, step + 1, session.steps_per_epoch)
    if session.dev.type == "cuda":
        torch.cuda.synchronize()  # so the epoch's time includes its queued GPU work
    return totals


def _epoch_logs(session: Session, totals: torch.Tensor, epoch: int) -> dict:
    """The epoch's loss and accuracy over all ranks, and its validation scores."""
    loss_sum, correct, known, seen = session.ctx.sum(totals).tolist()
    logs = {"loss": loss_sum / seen, "accuracy": correct / max(known, 1)}
    if not math.isfinite(logs["loss"]):
        raise DigitkitError(f"training diverged in epoch {epoch + 1} (the loss is {logs['loss']}); "
                            f"lower the learning rate (it was {session.config.lr})")
    if session.validate:
        logs["val_loss"], logs["val_accuracy"] = _evaluate(session)
    return logs


def _write_run_settings(run: Run, config: TrainConfig, data) -> None:
    saved = dataclasses.asdict(config) | {"dataset": data.name, "labels": list(data.class_names),
                                          "digitkit": __version__}
    if config.data is not None:
        saved |= {"data": data.source, "data_counts": {"train": int(len(data.x_train)),
                  "val": int(len(data.x_val)), "test": int(len(data.x_test))}}
        # The run keeps its own test split: evaluate and verify use it even if the folder changes.
        write_idx(run.path / TEST_FILES[0], data.x_test)
        write_idx(run.path / TEST_FILES[1], data.y_test)
    atomic_write_json(run.path / "config.json", saved)


def _default_name(model: str) -> str:
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
