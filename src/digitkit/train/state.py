"""A training's working parts (:class:`Session`) and what resuming it needs (:class:`TrainState`,
saved after every epoch and loaded in one place)."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import keras
import torch

from digitkit.files import atomic_path
from digitkit.train import distributed
from digitkit.train.augment import Augmentation
from digitkit.train.average import WeightAverage
from digitkit.train.config import TrainConfig
from digitkit.train.mix import TrainingData
from digitkit.train.twin import TrainingTwin

STATE_FILE = "resume-state.pt"


@dataclasses.dataclass
class Session:
    """Everything one training needs from its first epoch to its last."""

    config: TrainConfig
    data: object
    sets: TrainingData
    model: keras.Model
    twin: TrainingTwin
    step_module: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: object
    gen: torch.Generator
    aug: Augmentation | None
    checkpointer: keras.callbacks.ModelCheckpoint
    stopper: keras.callbacks.EarlyStopping
    callbacks: keras.callbacks.CallbackList
    steps_per_epoch: int
    dev: torch.device
    ctx: distributed.Context
    average: WeightAverage | None = None

    def averaged(self):
        """The weights that are validated and saved: the moving average's when the recipe keeps one."""
        return self.average.swapped_in() if self.average is not None else contextlib.nullcontext()

    @property
    def validate(self) -> bool:
        return len(self.sets.x_valid) > 0

    @property
    def monitor(self) -> str:
        return "val_loss" if self.validate else "loss"


@dataclasses.dataclass
class TrainState:
    """What resuming needs: where the run is (epochs done, their history and time) and everything
    random or stateful, so the continued run is the one that did not stop. Saved after every epoch."""

    epoch: int = 0
    history: list[dict] = dataclasses.field(default_factory=list)
    train_seconds: float = 0.0
    weights: list | None = None
    optimizer: dict | None = None
    scheduler: dict | None = None
    generator: torch.Tensor | None = None
    torch_rng: torch.Tensor | None = None
    checkpoint_best: float | None = None
    early_best: float | None = None
    early_wait: int = 0
    average: dict | None = None

    def capture(self, session: Session) -> TrainState:
        self.weights, self.optimizer = session.model.get_weights(), session.opt.state_dict()
        self.scheduler, self.generator = session.sched.state_dict(), session.gen.get_state()
        self.torch_rng = torch.get_rng_state()
        self.checkpoint_best, self.early_best = session.checkpointer.best, session.stopper.best
        self.early_wait = session.stopper.wait
        self.average = session.average.state_dict() if session.average is not None else None
        return self

    def restore(self, session: Session) -> None:
        session.model.set_weights(self.weights)
        session.opt.load_state_dict(self.optimizer)
        session.sched.load_state_dict(self.scheduler)
        session.gen.set_state(self.generator)
        torch.set_rng_state(self.torch_rng)
        session.checkpointer.best, session.stopper.best = self.checkpoint_best, self.early_best
        session.stopper.wait = self.early_wait
        if session.average is not None and self.average is not None:
            session.average.load_state_dict(self.average)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(dataclasses.asdict(self), tmp)

    @classmethod
    def load(cls, path: Path, dev: torch.device) -> TrainState:
        return cls(**torch.load(path, map_location=dev, weights_only=False))
