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


def scanned_forms(x: torch.Tensor, generator: torch.Generator, stretched: float) -> torch.Tensor:
    """Digits (N, 28, 28, 1) in 0..1 as a scanned form's digits reach the reader, after its
    normalisation: binarised at a low resolution (a digit 16 to 32 px tall) with jagged edges, a pen
    thicker or thinner, and ``stretched`` of them pulled to fill their box both ways, as some form
    processors deliver them (a 1 becomes a fat bar). Scanner specks are left out: normalisation
    drops them before the model sees the digit."""
    n, h, w, _ = x.shape
    dev = x.device
    images = x.reshape(n, 1, h, w).float()
    images = _fill_box(images, torch.rand(n, device=dev, generator=generator) < stretched)
    out = torch.empty_like(images)
    # The digit's 20 px box at 16-32 px: one resize per resolution, each image at one of them.
    sizes = torch.randint(0, 5, (n,), device=dev, generator=generator)
    threshold = 0.25 + 0.35 * torch.rand(n, 1, 1, 1, device=dev, generator=generator)
    pen = torch.randint(0, 4, (n,), device=dev, generator=generator)  # 0 thinner, 1 thicker, else as written
    for k, side in enumerate((16, 20, 24, 28, 32)):
        index = (sizes == k).nonzero().squeeze(1)
        if not len(index):
            continue
        small = round(h * side / 20)
        low = F.interpolate(images[index], size=(small, small), mode="bilinear", antialias=True, align_corners=False)
        binary = (low > threshold[index]).float()
        thick, thin = (pen[index] == 1).view(-1, 1, 1, 1), (pen[index] == 0).view(-1, 1, 1, 1)
        binary = torch.where(thick, F.max_pool2d(binary, 2, 1, padding=1)[..., :small, :small], binary)
        binary = torch.where(thin & (binary.sum((2, 3), keepdim=True) > 40), -F.max_pool2d(-binary, 2, 1, padding=1)[..., 1:, 1:], binary)
        out[index] = F.interpolate(binary, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    out = out.clamp(0, 1)
    return (out / out.amax(dim=(2, 3), keepdim=True).clamp_min(1e-3)).reshape(n, h, w, 1)


def _fill_box(images: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """The chosen images' ink stretched to fill the central 20 x 20 box (width and height alike)."""
    index = chosen.nonzero().squeeze(1)
    if not len(index):
        return images
    some = images[index, 0]
    n, h, w = some.shape
    rows, cols = (some > 0.2).any(2), (some > 0.2).any(1)
    positions = torch.arange(h, device=images.device, dtype=torch.float32)

    def extent(inked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.where(inked, positions, torch.inf).amin(1)
        high = torch.where(inked, positions, -torch.inf).amax(1) + 1
        return torch.where(inked.any(1), low, 4.0), torch.where(inked.any(1), high, 24.0)

    top, bottom = extent(rows)
    left, right = extent(cols)
    theta = torch.zeros(n, 2, 3, device=images.device)
    # affine_grid maps output to input in [-1, 1]: the output's 20 px box is the ink's box.
    theta[:, 0, 0] = (right - left) / 20
    theta[:, 1, 1] = (bottom - top) / 20
    theta[:, 0, 2] = (left + right) / w - 1
    theta[:, 1, 2] = (top + bottom) / h - 1
    grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
    images = images.clone()
    images[index] = F.grid_sample(some[:, None], grid, align_corners=False, padding_mode="zeros")
    return images
