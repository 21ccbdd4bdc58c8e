"""Augmentation suited to handwriting, applied to whole batches on the training device.

One random affine map per image (rotation, scale, shear, translation) resampled once, plus an
occasional thicker or thinner stroke. Written with torch ops rather than Keras' Random* layers:
those chain one resampling pass per transform, which blurs thin strokes and costs a pass each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    rotation_deg: float = 10.0
    scale: float = 0.1  # zoom factor drawn from 1 ± scale
    shear: float = 0.1
    translate_px: float = 2.0
    stroke_prob: float = 0.2  # chance of a thicker or a thinner stroke (half each)


def augment_batch(x: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch of (N, 28, 28, 1) images in 0..1; returns a new tensor of the same shape."""
    n, h, w, _ = x.shape
    images = x.reshape(n, 1, h, w)  # a 1-channel NHWC batch is already NCHW in memory

    def uniform(scale: float) -> torch.Tensor:
        return (torch.rand(n, device=x.device, generator=generator) * 2 - 1) * scale

    angle = uniform(math.radians(aug.rotation_deg))
    zoom = 1 + uniform(aug.scale)
    shear = uniform(aug.shear)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, device=x.device)
    # affine_grid maps output to input coordinates, so dividing by zoom enlarges the digit.
    theta[:, 0, 0] = cos / zoom
    theta[:, 0, 1] = (shear - sin) / zoom
    theta[:, 1, 0] = sin / zoom
    theta[:, 1, 1] = cos / zoom
    theta[:, 0, 2] = uniform(2 * aug.translate_px / w)
    theta[:, 1, 2] = uniform(2 * aug.translate_px / h)
    grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
    images = F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")

    if aug.stroke_prob > 0:
        pick = torch.rand(n, 1, 1, 1, device=x.device, generator=generator)
        thicker = (images + F.max_pool2d(images, 3, 1, 1)) / 2
        thinner = (images - F.max_pool2d(-images, 3, 1, 1)) / 2
        images = torch.where(pick < aug.stroke_prob / 2, thicker, images)
        images = torch.where((pick >= aug.stroke_prob / 2) & (pick < aug.stroke_prob), thinner, images)
    return images.reshape(n, h, w, 1)
