"""Augmentation suited to handwriting, applied to whole batches on the training device.

Per image: one random affine map (rotation, zoom, aspect-ratio change, slant, translation) plus an
elastic distortion (a smooth random displacement field, as different writers bend the same
strokes), resampled once; then sometimes a thicker or thinner stroke. Written with torch ops rather
than Keras' Random* layers: those chain one resampling pass per transform, which blurs thin strokes
and costs a pass each, and Keras has no elastic transform.
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
    aspect: float = 0.1  # width / height changed by a factor from 1 ± aspect
    shear: float = 0.15  # slant: x shifted by shear × y
    translate_px: float = 2.0
    elastic_px: float = 0.7  # std of the displacement at each point of a coarse grid, in pixels
    elastic_grid: int = 4  # the displacement field is smooth over this many cells per side
    stroke_prob: float = 0.2  # chance of a thicker or a thinner stroke (half each)


def _upsampler(size: int, cells: int, dev) -> torch.Tensor:
    """(size, cells) linear-interpolation weights from a coarse grid to pixel centres."""
    position = torch.linspace(0, cells - 1, size, device=dev)
    return torch.clamp(1 - (position[:, None] - torch.arange(cells, device=dev)[None, :]).abs(), min=0)


def augment_batch(x: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch of (N, 28, 28, 1) images in 0..1; returns a new tensor of the same shape."""
    n, h, w, _ = x.shape
    images = x.reshape(n, 1, h, w)  # a 1-channel NHWC batch is already NCHW in memory

    def uniform(scale: float) -> torch.Tensor:
        return (torch.rand(n, device=x.device, generator=generator) * 2 - 1) * scale

    angle = uniform(math.radians(aug.rotation_deg))
    zoom = 1 + uniform(aug.scale)
    stretch = 1 + uniform(aug.aspect)
    zoom_x, zoom_y = zoom * stretch.sqrt(), zoom / stretch.sqrt()
    shear = uniform(aug.shear)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, device=x.device)
    # affine_grid maps output to input coordinates, so dividing by zoom enlarges the digit.
    theta[:, 0, 0] = cos / zoom_x
    theta[:, 0, 1] = (shear - sin) / zoom_x
    theta[:, 1, 0] = sin / zoom_y
    theta[:, 1, 1] = cos / zoom_y
    theta[:, 0, 2] = uniform(2 * aug.translate_px / w)
    theta[:, 1, 2] = uniform(2 * aug.translate_px / h)
    grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
    if aug.elastic_px > 0:
        cells = aug.elastic_grid + 1
        coarse = torch.randn(n, 2, cells, cells, device=x.device, generator=generator) * (2 * aug.elastic_px / w)
        # Upsample the coarse field with two small matrix products (F.interpolate is 10x slower on CPU).
        rows, cols = _upsampler(h, cells, x.device), _upsampler(w, cells, x.device)
        grid = grid + torch.einsum("hi,ncij,wj->nhwc", rows, coarse, cols)
    images = F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")

    if aug.stroke_prob > 0:
        pick = torch.rand(n, device=x.device, generator=generator)
        # Only the images picked: a 3x3 max filter over the whole batch costs more than the rest.
        for chosen, sign in ((pick < aug.stroke_prob / 2, 1), ((pick >= aug.stroke_prob / 2) & (pick < aug.stroke_prob), -1)):
            index = chosen.nonzero().squeeze(1)
            if len(index):
                some = images[index]
                images[index] = (some + sign * F.max_pool2d(sign * some, 3, 1, 1)) / 2  # thicker / thinner
    # Real inputs always reach full white (normalisation stretches them): so do these.
    images = images / images.amax(dim=(2, 3), keepdim=True).clamp_min(1e-3)
    return images.reshape(n, h, w, 1)
