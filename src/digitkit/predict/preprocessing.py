"""Turn any image of one handwritten digit into the 28×28 input MNIST models expect.

MNIST digits are white on black, fitted into 20×20 keeping their aspect ratio (anti-aliased),
and placed in a 28×28 field so that their centre of mass is at the centre. Photos, scans and canvas
drawings are not: this routine gets them there. The steps (docs/preprocessing.md has them with test
vectors, for ports to JavaScript and Swift):

1. Load any Pillow mode; grey level = 8-bit ITU-R 601 luma; alpha kept.
2. Ink map. With transparency (alpha < 255 somewhere) and opaque pixels a minority, the alpha *is*
   the ink (a drawing on a transparent canvas). Otherwise transparent pixels take the background
   level, the background level is the (lower) median grey (ink covers less than half of an image of
   one digit), and polarity follows from it: ink = background − grey on light paper (median ≥ 128),
   grey − background on dark.
3. Clean: ink below ``NOISE_FRACTION`` of the strongest ink is background (paper texture, JPEG
   noise, shadows); specks under ``SPECK_FRACTION`` of the largest connected stroke are dropped.
4. Crop to the ink's bounding box; thin strokes (relative to the digit's size) are thickened so
   that they survive the downscale, as MNIST's pen was thick relative to the digit.
5. Scale the longer side to 20 px keeping the aspect ratio (Lanczos, anti-aliased); stretch to 0..1.
6. Paste into 28×28 so that the centre of mass lands on the centre (rounded to whole pixels).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from digitkit import DigitkitError

FIELD = 28
BOX = 20
NOISE_FRACTION = 0.25
SPECK_FRACTION = 0.05
MIN_CONTRAST = 0.1  # strongest ink, as a fraction of full scale, below which the image is blank
TARGET_STROKE = 0.12  # MNIST: stroke width is about 12% of the digit's longer side
MAX_PIXELS = 40_000_000  # larger images are refused (decompression bombs)


class NormalizeError(DigitkitError):
    """An image that cannot be read as a digit (unreadable, empty, blank or too large)."""


@dataclass
class Normalized:
    image: np.ndarray  # uint8 (28, 28), white digit on black
    polarity: str  # "dark-on-light", "light-on-dark" or "alpha"


def load_image(source) -> Image.Image:
    """Open a path, bytes or file object with Pillow, refusing decompression bombs."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            if image.width * image.height > MAX_PIXELS:
                raise NormalizeError(
                    f"image is {image.width}x{image.height} pixels, more than the {MAX_PIXELS:,} accepted")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NormalizeError(f"image is too large (over {MAX_PIXELS:,} pixels)") from None
    except UnidentifiedImageError:
        raise NormalizeError("not an image file Pillow can read") from None
    except FileNotFoundError:
        raise NormalizeError("file not found") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt files
        raise NormalizeError(f"unreadable image ({err})") from None
    if image.width == 0 or image.height == 0:
        raise NormalizeError("image has zero size")
    return image


def _grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 grey (luma) and, when some pixel is transparent, uint8 alpha."""
    if image.mode in ("I", "I;16", "F"):  # 16/32-bit greys: stretch to 8 bits
        arr = np.asarray(image, np.float32)
        span = float(arr.max() - arr.min()) or 1.0
        return ((arr - arr.min()) * (255 / span)).round().astype(np.uint8), None
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        alpha = np.asarray(image.getchannel("A"))
        grey = np.asarray(image.convert("L"))
        return grey, alpha if alpha.min() < 255 else None
    return np.asarray(image if image.mode == "L" else image.convert("L")), None


def _median(values: np.ndarray) -> int:
    """Lower median of uint8 values, from their histogram (O(n), no sort)."""
    counts = np.cumsum(np.bincount(values.reshape(-1), minlength=256))
    return int(np.searchsorted(counts, (values.size - 1) // 2, side="right"))


def ink_map(image: Image.Image) -> tuple[np.ndarray, str]:
    """Ink strength in 0..1 per pixel (0 = background), and the polarity that was detected."""
    grey, alpha = _grey_and_alpha(image)
    if alpha is not None:
        opaque = alpha > 127
        if opaque.mean() < 0.5:
            return alpha.astype(np.float32) / 255, "alpha"
        grey = np.where(opaque, grey, _median(grey[opaque])).astype(np.uint8)
    background = _median(grey)
    grey = grey.astype(np.float32)
    if background >= 128:
        return np.clip((background - grey) / 255, 0, 1), "dark-on-light"
    return np.clip((grey - background) / 255, 0, 1), "light-on-dark"


def _clean(ink: np.ndarray) -> np.ndarray:
    """Drop faint ink and specks; returns the ink cropped to the bounding box of what is left."""
    ink = np.where(ink >= NOISE_FRACTION * ink.max(), ink, 0)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # labelling the crop is much cheaper
    labels, count = ndimage.label(ink > 0)
    if count > 1:
        sizes = np.bincount(labels.reshape(-1))[1:]
        keep = np.flatnonzero(sizes >= SPECK_FRACTION * sizes.max()) + 1
        ink = np.where(np.isin(labels, keep), ink, 0)
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return ink


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: area / half the boundary length (a long stroke of length L
    and width w has area L·w and boundary ≈ 2L)."""
    boundary = mask & ~ndimage.binary_erosion(mask)
    return 2 * mask.sum() / max(boundary.sum(), 1)


def normalize(image: Image.Image) -> Normalized:
    """Normalise one digit image to MNIST's format; raises :class:`NormalizeError` if it has no ink."""
    ink, polarity = ink_map(image)
    if ink.max() < MIN_CONTRAST:
        raise NormalizeError("no digit found: the image is blank")
    ink = _clean(ink)
    longer = max(ink.shape)
    width = _stroke_width(ink > 0)
    wanted = TARGET_STROKE * longer
    if width < 0.6 * wanted:
        grow = int(round((wanted - width) / 2))
        if grow > 0:
            yy, xx = np.mgrid[-grow : grow + 1, -grow : grow + 1]
            ink = ndimage.maximum_filter(np.pad(ink, grow), footprint=yy**2 + xx**2 <= grow**2)
            longer = max(ink.shape)
    scale = BOX / longer
    height, width_px = ink.shape
    size = (max(1, round(width_px * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(ink.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0, None)
    small = small / small.max()
    # MNIST's centres of mass sit at pixel (14, 14) of the field, to the nearest pixel.
    cy, cx = ndimage.center_of_mass(small)
    top, left = int(round(FIELD / 2 - cy)), int(round(FIELD / 2 - cx))
    top = min(max(top, 0), FIELD - small.shape[0])
    left = min(max(left, 0), FIELD - small.shape[1])
    field = np.zeros((FIELD, FIELD), np.float32)
    field[top : top + small.shape[0], left : left + small.shape[1]] = small
    return Normalized(np.round(field * 255).astype(np.uint8), polarity)


def normalize_file(path: str | Path) -> Normalized:
    return normalize(load_image(path))
