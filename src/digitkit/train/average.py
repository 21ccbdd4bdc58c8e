"""An exponential moving average of a model's weights (Polyak averaging), evaluated and saved in
place of the raw weights: the average of the last few hundred steps lands nearer the middle of the
minimum than the last step does. Batch-norm statistics are averaged with the weights, so they
belong to the averaged network (as timm's ModelEmaV2 does). Written here because Keras' ``use_ema``
lives in its optimizers, which digitkit's torch loop does not use, and torch's ``AveragedModel``
would wrap the model that the callbacks save."""

from __future__ import annotations

import contextlib

import keras
import torch


class WeightAverage:
    def __init__(self, model: keras.Model, decay: float):
        self.live = [v.value for v in model.weights if v.value.is_floating_point()]
        self.shadow = [t.detach().clone() for t in self.live]
        self.decay = decay
        self.steps = 0

    @torch.no_grad()
    def update(self) -> None:
        """After an optimizer step: move the average toward the weights (gently at first, so the
        random initial weights are soon forgotten)."""
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(self.shadow, [t.detach() for t in self.live], 1 - decay)

    @contextlib.contextmanager
    def swapped_in(self):
        """The model holds the averaged weights inside the block (to validate and save them) and its
        own again after it."""
        with torch.no_grad():
            own = [t.detach().clone() for t in self.live]
            for live, average in zip(self.live, self.shadow):
                live.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for live, kept in zip(self.live, own):
                    live.copy_(kept)

    def state_dict(self) -> dict:
        return {"shadow": [t.detach().cpu() for t in self.shadow], "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for average, saved in zip(self.shadow, state["shadow"]):
                average.copy_(saved)
        self.steps = state["steps"]
