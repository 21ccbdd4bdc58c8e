"""Running a Keras model on the torch backend: the device, image tensors, batched prediction.
Training and evaluation both use these."""

from __future__ import annotations

import digitkit  # noqa: F401  (selects the torch backend before Keras loads)
import numpy as np
import torch


def device() -> torch.device:
    """The device Keras placed its variables on: CUDA when available, else CPU."""
    from keras.src.backend.torch.core import get_device

    return torch.device(get_device())


def to_tensor(images: np.ndarray, dev: torch.device) -> torch.Tensor:
    """uint8 (N, H, W) images → float32 (N, H, W, 1) in 0..1 on ``dev``."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(dev).float().div_(255).unsqueeze(-1)


@torch.no_grad()
def predict_probs(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Class probabilities for (N, H, W, 1) images in 0..1, in inference mode."""
    if len(x) == 0:
        return torch.zeros((0, model.output_shape[-1]), device=x.device)
    return torch.cat([model(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)])


def predict_images(model, images: np.ndarray) -> np.ndarray:
    """Probabilities (N, classes) for uint8 (N, H, W) images, computed on the training device."""
    return predict_probs(model, to_tensor(images, device())).cpu().numpy()
