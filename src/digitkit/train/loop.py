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
from pathlib import Path

import digitkit.models  # noqa: F401  (selects the torch backend before Keras loads)
import keras
import numpy as np
import torch
import torch.nn.functional as F

from digitkit import ConfigError, DigitkitError, __version__
from digitkit.classifier import KerasClassifier
from digitkit.data import load_dataset, split_validation, write_idx
from digitkit.data.folders import dataset_name, load_folder
from digitkit.data.handwriting import DIGITS, load_extra_digits, load_non_digits, load_part
from digitkit.files import atomic_path, atomic_write_json
from digitkit.inference import device, predict_probs, to_tensor
from digitkit.models import SHIFTS, base_model, build_model, copy_weights, fold_temperature, portable, shift_averaged, shift_images
from digitkit.report import save_report_figures, score
from digitkit.runs import MODEL_FILE, TEST_FILES, Run, load_keras_model
from digitkit.train import distributed
from digitkit.train.augment import Augmentation, augment_batch
from digitkit.train.calibrate import apply_temperature, fit_temperature
from digitkit.train.twin import TrainingTwin
from digitkit.train.config import TrainConfig
from digitkit.ui import console, epoch_progress, escape, item_progress, number


def _loss(probs: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy; a label past the last class marks a drawing of no class (a non-digit), whose
    target is equal probabilities for every class (outlier exposure), so it is answered unsure."""
    # The models end in softmax (the exported contract), so the loss takes log-probabilities.
    log_p = torch.log(probs.clamp_min(1e-7))
    classes = probs.shape[1]
    known = F.cross_entropy(log_p, labels.clamp_max(classes - 1), label_smoothing=smoothing, reduction="none")
    return torch.where(labels < classes, known, -log_p.mean(1)).mean()


@torch.no_grad()
def _evaluate(twin: TrainingTwin, x: torch.Tensor, y: torch.Tensor, smoothing: float) -> tuple[float, float]:
    # As in Keras, val_loss is the training loss (label smoothing included): plain cross-entropy
    # rises late in a smoothed run while accuracy still improves, and would pick too early an epoch.
    probs = torch.cat([twin(x[i : i + 1000], training=False) for i in range(0, len(x), 1000)])
    return _loss(probs, y, smoothing).item(), (probs.argmax(1) == y).float().mean().item()


def mixed_precision(dev: torch.device, precision: str = "auto"):
    """bf16 autocast where it pays (``auto``): CUDA, and CPUs with AMX tiles (bf16 matrix units);
    other CPUs compute bf16 slower than fp32, so they keep fp32. ``fp32`` and ``bf16`` force it."""
    use_bf16 = precision == "bf16" or (precision == "auto" and (
        dev.type == "cuda" or (dev.type == "cpu" and torch.cpu._is_amx_tile_supported())))
    return torch.autocast(dev.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()


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


def train(config: TrainConfig, on_epoch_end=None, quiet: bool = False, on_step=None) -> Run:
    """Train a model as ``config`` says and write its run folder; returns the :class:`Run`.

    The run is built in a hidden folder beside its final place (``runs/.<name>.partial``) and moved
    there when complete, so a failure leaves nothing half-written under the run's name (and an old
    run being overwritten stays intact). A run interrupted after an epoch keeps its hidden folder
    with the training state, so ``resume`` continues from the last finished epoch. Under torchrun
    the ranks train together (train.distributed) and rank 0 alone writes.
    ``on_epoch_end(epoch, model, logs)`` is called after each epoch (benchmarks time accuracy with it),
    ``on_step(epoch, step, steps_per_epoch)`` after each step (progress and cancelling within a step);
    an exception either raises stops the training.
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
        _train_into(run, config, data, on_epoch_end, on_step, quiet, ctx, seconds)
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


STATE_FILE = "resume-state.pt"


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


MIN_STEPS = 50  # steps per epoch at least: a small dataset is drawn from again (augmented each time)


class TrainingData:
    """The training and validation tensors on the device, and each epoch's order of examples.

    Digit datasets only: with ``config.synthetic`` > 0, every epoch is the dataset's training images
    plus a fresh random draw from other writers' handwriting (data.handwriting: real pen digits and
    generated styles, as ``config.writers`` says), that many that they make up the ``synthetic``
    fraction of the epoch; a tenth of them joins the validation split, so the best epoch and the
    calibration are chosen on other writers too; with the real pen digits, the calibration writers
    (never trained on) join the validation split and alone fit the temperature. With
    ``config.non_digits`` > 0, that fraction of the epoch is drawings that are not digits, labelled
    one past the last class (see ``_loss``)."""

    def __init__(self, config: TrainConfig, data, dev: torch.device):
        if data.x_val is not None:
            x_tr, y_tr, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
        else:
            x_tr, y_tr, x_val, y_val = split_validation(data.x_train, data.y_train, config.val_size, config.seed)
        if config.limit:
            x_tr, y_tr = x_tr[: config.limit], y_tr[: config.limit]
        if not len(x_tr):
            raise DigitkitError("no training images left after the validation split")
        self.base = len(x_tr)
        digits = list(data.class_names) == list(DIGITS)
        synthetic = config.synthetic if digits else 0.0
        non_digits = config.non_digits if digits else 0.0
        epoch_size = self.base / (1 - synthetic - non_digits)
        # Pools after the dataset's images: (first index, size, drawn per epoch).
        self.pools: list[tuple[int, int, int]] = []
        self.pool_names: list[str] = []
        # Which validation images fit the temperature: all, or, where there are some, the writers
        # training never saw (how sure to be with a new person is what the page and the app show).
        self.calibration = np.ones(len(x_val), bool)
        if synthetic > 0:
            x_ex, y_ex = load_extra_digits(tuple(config.writers.split("+")))
            # Held out even when the dataset gives no validation images (--val-size 0): the best
            # epoch and the calibration are then chosen on other writers alone.
            x_ex_tr, y_ex_tr, x_ex_val, y_ex_val = split_validation(x_ex, y_ex, round(0.1 * len(x_ex)), config.seed)
            self.pools.append((len(x_tr), len(x_ex_tr), round(epoch_size * synthetic)))
            self.pool_names.append("other writers")
            x_tr, y_tr = np.concatenate([x_tr, x_ex_tr]), np.concatenate([y_tr, y_ex_tr])
            x_val, y_val = np.concatenate([x_val, x_ex_val]), np.concatenate([y_val, y_ex_val])
            self.calibration = np.zeros(len(x_val), bool)
            if "pendigits" in config.writers:
                x_cal, y_cal = load_part("pendigits-calibration")
                x_val, y_val = np.concatenate([x_val, x_cal]), np.concatenate([y_val, y_cal])
                self.calibration = np.concatenate([self.calibration, np.ones(len(x_cal), bool)])
            else:
                self.calibration[:] = True
        if non_digits > 0:
            x_nd = load_non_digits()
            self.pools.append((len(x_tr), len(x_nd), round(epoch_size * non_digits)))
            self.pool_names.append("non-digits")
            x_tr = np.concatenate([x_tr, x_nd])
            y_tr = np.concatenate([y_tr, np.full(len(x_nd), data.num_classes, y_tr.dtype)])
        self.per_epoch_extra = sum(drawn for _, _, drawn in self.pools)
        self.x_train, self.x_valid = to_tensor(x_tr, dev), to_tensor(x_val, dev)
        self.y_train, self.y_valid = (torch.from_numpy(a.astype(np.int64)).to(dev) for a in (y_tr, y_val))
        self.y_val_numpy = y_val
        self.repeat = max(0, MIN_STEPS * config.batch_size - self.base)
        self.epoch_size = self.base + self.repeat + self.per_epoch_extra

    def mix(self) -> str:
        """What each epoch draws besides the dataset, for the progress line."""
        return "".join(f" + {drawn:,} {name}" for (_, _, drawn), name in zip(self.pools, self.pool_names))

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        dev = self.x_train.device
        order = torch.randperm(self.base, device=dev, generator=generator)
        if self.repeat:
            order = torch.cat([order, torch.randint(self.base, (self.repeat,), device=dev, generator=generator)])
        if self.pools:
            drawn = [first + torch.randint(size, (count,), device=dev, generator=generator)
                     for first, size, count in self.pools]
            order = torch.cat([order, *drawn])
            order = order[torch.randperm(len(order), device=dev, generator=generator)]
        return order


def _train_into(run: Run, config: TrainConfig, data, on_epoch_end, on_step, quiet: bool,
                ctx: distributed.Context, seconds: dict) -> None:
    keras.utils.set_random_seed(config.seed)
    dev = device()
    started = time.perf_counter()
    sets = TrainingData(config, data, dev)
    seconds["data"] += time.perf_counter() - started
    x_train, y_train, x_valid, y_valid = sets.x_train, sets.y_train, sets.x_valid, sets.y_valid
    validate = len(x_valid) > 0
    monitor = "val_loss" if validate else "loss"

    model = build_model(config.model, data.num_classes)
    if config.init is not None:
        copy_weights(base_model(KerasClassifier.load(config.init).model), model, skip_head=True)
    twin = TrainingTwin(model, sync_batch_norm=ctx.active)
    steps_per_epoch = math.ceil(sets.epoch_size / config.batch_size)
    opt, sched = _optimizer(config, model, steps_per_epoch * config.epochs)
    aug = Augmentation() if config.augment else None
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    checkpoint = run.path / "checkpoint.keras"
    checkpointer = keras.callbacks.ModelCheckpoint(checkpoint, monitor=monitor, save_best_only=True)
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience)
    callbacks = keras.callbacks.CallbackList([checkpointer, stopper] if ctx.is_main else [], model=model)
    history: list[dict] = []
    train_seconds, first_epoch = 0.0, 0
    callbacks.on_train_begin()
    if config.resume:
        state = torch.load(run.path / STATE_FILE, map_location=dev, weights_only=False)
        model.set_weights(state["weights"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, train_seconds, first_epoch = state["history"], state["train_seconds"], state["epoch"]
        checkpointer.best, stopper.best, stopper.wait = state["checkpoint_best"], state["early_best"], state["early_wait"]
    elif ctx.is_main:
        _write_run_settings(run, config, data)
    step_module = distributed.wrap(twin, ctx, dev)  # DDP all-reduces the gradients of the ranks
    if not quiet:
        mix = sets.mix()
        resumed = f", resuming after epoch {first_epoch}" if config.resume else ""
        ranks = f", {ctx.world} processes" if ctx.active else ""
        console.print(
            f"Training [bold]{config.model}[/] ({model.count_params():,} parameters) on {escape(data.name)}: "
            f"{sets.base:,}{mix} train / {len(x_valid):,} validation images per epoch, {config.epochs} epochs, "
            f"batch {config.batch_size}, device {dev.type}{ranks}{resumed}"
        )

    autocast = mixed_precision(dev, config.precision)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.stop_training = False
    for epoch in range(first_epoch, config.epochs):
        callbacks.on_epoch_begin(epoch)
        start = time.perf_counter()
        order = sets.epoch_order(gen)  # the same on every rank: the generator is seeded alike
        totals = torch.zeros(4, device=dev)  # loss sum, correct, images of a class, examples (this rank's)
        with epoch_progress(f"epoch {epoch + 1}/{config.epochs}", steps_per_epoch, disable=quiet) as advance:
            for step in range(steps_per_epoch):
                batch = order[step * config.batch_size : (step + 1) * config.batch_size]
                idx = batch[ctx.rank :: ctx.world]  # this rank's share of the global batch
                xb, yb = x_train[idx], y_train[idx]
                if aug is not None:
                    xb = augment_batch(xb, aug, gen)
                with autocast:
                    probs = step_module(xb).float()
                    loss = _loss(probs, yb, config.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                # Accumulate on the device: reading a value back each step would sync.
                totals[0] += loss.detach() * len(idx)
                known = yb < probs.shape[1]  # accuracy over the images of a class (non-digits have none)
                totals[1] += ((probs.detach().argmax(1) == yb) & known).sum()
                totals[2] += known.sum()
                totals[3] += len(idx)
                advance()
                if on_step is not None and ctx.is_main:
                    on_step(epoch, step + 1, steps_per_epoch)
        if dev.type == "cuda":
            torch.cuda.synchronize()  # so the epoch's time includes its queued GPU work
        train_seconds += time.perf_counter() - start
        loss_sum, correct, known, seen = ctx.sum(totals).tolist()
        logs = {"loss": loss_sum / seen, "accuracy": correct / max(known, 1)}
        if not math.isfinite(logs["loss"]):
            raise DigitkitError(f"training diverged in epoch {epoch + 1} (the loss is {logs['loss']}); "
                                f"lower the learning rate (it was {config.lr})")
        if validate:
            logs["val_loss"], logs["val_accuracy"] = _evaluate(twin, x_valid, y_valid, config.label_smoothing)
        logs |= {"lr": opt.param_groups[0]["lr"], "seconds": train_seconds}
        history.append({"epoch": epoch + 1, **logs})
        if not quiet:
            shown = "  ".join(f"{k} {number(logs[k])}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs)
            console.print(f"epoch {epoch + 1:>2}/{config.epochs}  {shown}  ({train_seconds:.1f} s)")
        if on_epoch_end is not None and ctx.is_main:
            on_epoch_end(epoch, model, logs)
        callbacks.on_epoch_end(epoch, logs)
        if ctx.is_main:
            _save_state(run.path / STATE_FILE, epoch + 1, model, opt, sched, gen, history, train_seconds,
                        checkpointer, stopper)
        if ctx.broadcast(bool(model.stop_training)):  # rank 0's early-stopping decision, for all
            if not quiet:
                console.print(f"Early stopping: {monitor} has not improved for {config.patience} epochs.")
            break
    callbacks.on_train_end()
    if ctx.is_main:
        seconds["training"] = train_seconds
        _finish(run, config, data, sets, history, monitor, validate, dev, quiet, seconds)


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


def _save_state(path: Path, epochs_done: int, model, opt, sched, gen, history, train_seconds, checkpointer,
                stopper) -> None:
    """Everything to continue the run after ``epochs_done`` epochs exactly as if it had not stopped."""
    state = {"epoch": epochs_done, "weights": model.get_weights(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
             "history": history, "train_seconds": train_seconds, "checkpoint_best": checkpointer.best,
             "early_best": stopper.best, "early_wait": stopper.wait}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


class _Clock:
    """Seconds spent in each named step, added to ``seconds``."""

    def __init__(self, seconds: dict):
        self.seconds = seconds

    @contextlib.contextmanager
    def __call__(self, step: str):
        started = time.perf_counter()
        yield
        self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - started


def _finish(run: Run, config: TrainConfig, data, sets, history, monitor, validate, dev, quiet, seconds) -> None:
    """The best epoch's model, calibrated and in its portable form; its test scores and pictures."""
    clock = _Clock(seconds)
    with clock("model"):
        trained = load_keras_model(run.path / "checkpoint.keras")
        best = portable(trained)
        (run.path / "checkpoint.keras").unlink()
        # The best epoch's answers come from its training form through the twin: the same numbers
        # as the portable model's, several times sooner than Keras' own call path.
        twin = TrainingTwin(trained)
    temperature = None
    # The saved model answers with the average over these shifts of the calibrated network's answers.
    shifts = SHIFTS if config.shift_average else SHIFTS[:1]
    if config.calibrate and validate:
        with clock("calibration"):
            calibration = sets.x_valid[torch.as_tensor(sets.calibration, device=sets.x_valid.device)]
            val_probs = np.stack([predict_probs(twin, shift_images(calibration, dy, dx)).cpu().numpy()
                                  for dy, dx in shifts])
            temperature = fit_temperature(val_probs, sets.y_val_numpy[sets.calibration])
            fold_temperature(best, temperature)
    with clock("model"):
        with atomic_path(run.path / MODEL_FILE) as tmp:
            (shift_averaged(best) if config.shift_average else best).save(tmp)
        atomic_write_json(run.path / "history.json", history)
    with clock("test"):
        probs = 0
        for dy, dx in shifts:  # what the saved model answers: T folded in, shifts averaged
            shifted = predict_probs(twin, to_tensor(shift_images(data.x_test, dy, dx), dev)).cpu().numpy()
            probs = probs + (shifted if temperature is None else apply_temperature(shifted, temperature))
        probs = (probs / len(shifts)).astype(np.float32)
        report = {"dataset": data.name, **score(probs, data.y_test, data.class_names)}
    with clock("pictures"):
        save_report_figures(run.path, data.x_test, data.y_test, probs, data.class_names, report, history)
    metrics = report | {
        "temperature": temperature,
        "model": config.model,
        "parameters": int(best.count_params()),
        "shift_average": config.shift_average,
        "train_seconds": round(seconds["training"], 2),
        "epochs_run": len(history),
        "best_epoch": int(np.argmin([h[monitor] for h in history])) + 1,
        "device": dev.type,
        # Where the run's time went, step by step (docs/benchmarks.md's start-up table).
        "seconds": {step: round(value, 2) for step, value in seconds.items()},
    }
    atomic_write_json(run.path / "metrics.json", metrics)
    if not quiet:
        console.print(
            f"Test accuracy [bold]{metrics['test_accuracy']:.2%}[/] (loss {metrics['test_loss']:.4f}); "
            f"{seconds['training']:.1f} s of training."
        )


def _default_name(model: str) -> str:
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
