"""Turn any image of one handwritten digit (or drawing) into the 28×28 input MNIST models expect.

MNIST digits are white on black, fitted into 20×20 keeping their aspect ratio (anti-aliased),
and placed in a 28×28 field so that their centre of mass is at the centre. Photos, scans and canvas
drawings are not: this routine gets them there. The steps (docs/preprocessing.md has them with test
vectors, for the ports to JavaScript and Swift):

1. Load any Pillow mode (EXIF rotation applied); grey level = 8-bit ITU-R 601 luma; alpha kept.
   Images larger than ``WORK_SIZE`` on their longer side are first reduced by an integer factor
   (box filter), so the cost of every later step is bounded whatever the input size.
2. Ink map. With transparency (alpha < 255 somewhere) and opaque pixels a minority, the alpha *is*
   the ink (a drawing on a transparent canvas). Otherwise transparent pixels take the background
   level, the background level is the (lower) median grey (ink covers less than half of an image of
   one digit), unless the median of the image's edge is on the other side of mid-grey (ink over
   half of a tight box: the edge's level is the ground's; a dark edge round a light majority only
   in a two-level bitmap or an image of at most ``DATASET_SIZE`` px a side, since in a photo it is a
   desk round the paper), and polarity follows from it: ink = background − grey on light paper
   (background ≥ 128), grey − background on dark.
3. Clean: ink below ``NOISE_FRACTION`` of the strongest ink is background (paper texture, JPEG
   noise, shadows); a printed box around the digit (a scanned form) is dropped; specks under
   ``SPECK_FRACTION`` of the largest connected stroke are dropped.
4. Crop to the ink's bounding box; a digit smaller than the 20 px box (a dataset's 16 px bitmap) is
   enlarged by a whole factor to at least ``ENLARGED`` px, each pixel a square. Thin strokes
   (relative to the digit's size) are thickened so that they survive the downscale, as MNIST's pen
   was thick relative to the digit; strokes that are already thick enough (pinholes in textured
   ink ignored) are left as they are.
5. Scale the longer side to 20 px keeping the aspect ratio (Lanczos, anti-aliased); stretch to 0..1.
6. Paste into 28×28 so that the centre of mass lands on the centre (rounded to whole pixels).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from digitkit import DigitkitError

FIELD = 28
BOX = 20
NOISE_FRACTION = 0.25
SPECK_FRACTION = 0.05
ENLARGED = 64  # px: a digit smaller than the box is enlarged to at least this before it is fitted
DATASET_SIZE = 32  # px a side at most: a dataset's or a form processor's digit (16-32 px), not a photo of paper
MIN_CONTRAST = 0.1  # strongest ink, as a fraction of full scale, below which the image is blank
TARGET_STROKE = 0.12  # MNIST: stroke width is about 12% of the digit's longer side
THIN_STROKE = 0.6  # strokes thinner than this fraction of the target are thickened
MAX_PIXELS = 16_000_000  # larger images are refused (decompression bombs, memory)
MAX_SIDE = 20_000  # and so are absurd shapes (a 100-byte 20000x1 PNG)
WORK_SIZE = 384  # longer side above which an image is first reduced by an integer factor (the model sees 20 px)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


class NormalizeError(DigitkitError):
    """An image that cannot be read as a digit (unreadable, empty or too large)."""


class BlankImage(NormalizeError):
    """A readable image with no ink on it: not an error of the file, there is simply nothing drawn."""


@dataclass
class Normalized:
    image: np.ndarray  # uint8 (28, 28), white digit on black
    polarity: str  # "dark-on-light", "light-on-dark" or "alpha"


def load_image(source, region: tuple[int, int, int, int] | None = None) -> Image.Image:
    """Open a path, bytes or file object with Pillow, refusing decompression bombs; decoded, with
    EXIF orientation applied, and reduced to at most ``WORK_SIZE`` on its longer side. With
    ``region`` (x, y, width, height in the upright image's own pixels), only that part, as closely
    as ``WORK_SIZE`` allows (a closer look at a small number in a large photo). A reduced image
    opened from a path or bytes keeps them in ``info["source"]`` for such a closer look."""
    reopen = source if isinstance(source, (str, Path, bytes, bytearray)) else None
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            if image.width * image.height > MAX_PIXELS or max(image.size) > MAX_SIDE:
                raise NormalizeError(f"image is too large: {image.width}x{image.height} pixels, more than the "
                                     f"{MAX_PIXELS:,} pixels ({MAX_SIDE:,} on a side) accepted")
            if image.width == 0 or image.height == 0:
                raise NormalizeError("image has zero size")
            full = image.size
            # JPEG decodes at 1/2, 1/4 or 1/8 scale for free: ask for no more than the work size
            # (of the region, when only a region is wanted).
            zoom = 1.0 if region is None else max(full) / max(1, *region[2:])
            image.draft(None, (round(WORK_SIZE * zoom), round(WORK_SIZE * zoom)))
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # a copy otherwise, even with no rotation: 64 MB at 16 MP
            if (image.width > image.height) != (full[0] > full[1]):
                full = full[::-1]  # turned a quarter by its EXIF orientation
            if region is not None:
                image, full = _crop(image, full, region)
            factor = -(-max(image.size) // WORK_SIZE)
            if factor > 1:
                # reduce() averages pixel values: palette indices must become colours first, and it
                # has no kernels for 1-bit and 16-bit modes.
                wider = {"1": "L", "P": "RGBA", "PA": "RGBA"}.get(image.mode, "I" if image.mode.startswith("I;16") else None)
                image = _reduce(image.convert(wider) if wider else image, factor)
    except NormalizeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NormalizeError(f"image is too large (over {MAX_PIXELS:,} pixels)") from None
    except UnidentifiedImageError:
        raise NormalizeError("not an image file Pillow can read") from None
    except FileNotFoundError:
        raise NormalizeError("file not found") from None
    except IsADirectoryError:
        raise NormalizeError("is a folder, not an image file") from None
    except MemoryError:
        raise NormalizeError("image is too large to decode") from None
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, EOFError) as err:
        # Truncated or corrupt files; Pillow's decoders raise all of these.
        raise NormalizeError(f"unreadable image ({type(err).__name__}: {err})") from None
    # The size as opened (upright): what a box found in the reduced image scales back to.
    image.info["full_size"] = full
    if reopen is not None and max(full) > max(image.size):
        image.info["source"] = reopen
    return image


def _crop(image: Image.Image, full: tuple[int, int], region: tuple[int, int, int, int]):
    """The region (in the full image's pixels) of an image decoded at a smaller scale, and its full size."""
    x, y = max(0, region[0]), max(0, region[1])
    right, bottom = min(full[0], region[0] + region[2]), min(full[1], region[1] + region[3])
    if right <= x or bottom <= y:
        raise NormalizeError(f"the region {region} lies outside the {full[0]}x{full[1]} image")
    kx, ky = image.width / full[0], image.height / full[1]
    box = (int(x * kx), int(y * ky), max(int(x * kx) + 1, round(right * kx)), max(int(y * ky) + 1, round(bottom * ky)))
    return image.crop(box), (right - x, bottom - y)


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """``Image.reduce``, strip by strip for LA and RGBA: Pillow averages those premultiplied by alpha
    and makes the premultiplied copy of the whole image first (64 MB more at 16 MP)."""
    if image.mode not in ("LA", "RGBA"):
        return image.reduce(factor)
    rows = 64 * factor  # a whole number of blocks per strip: the same blocks as one reduce()
    out = Image.new(image.mode, (-(-image.width // factor), -(-image.height // factor)))
    for top in range(0, image.height, rows):
        out.paste(image.crop((0, top, image.width, min(top + rows, image.height))).reduce(factor), (0, top // factor))
    return out


def _grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 grey (luma) and, when some pixel is transparent, uint8 alpha."""
    try:
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16/32-bit greys: stretch to 8 bits
            arr = np.asarray(image, np.float32)
            if not np.isfinite(arr).all():
                arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
            span = float(arr.max() - arr.min()) or 1.0
            return ((arr - arr.min()) * (255 / span)).round().astype(np.uint8), None
        if image.mode == "LAB":  # lightness is the grey level
            return np.asarray(image.getchannel("L")), None
        if image.mode == "P" or "transparency" in image.info:
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
            alpha = np.asarray(image.getchannel("A"))
            grey = np.asarray(image.convert("L") if image.mode != "LA" else image.getchannel("L"))
            return grey, alpha if alpha.min() < 255 else None
        if image.mode not in ("L", "1", "RGB"):
            image = image.convert("RGB")  # CMYK, YCbCr, HSV, RGBX, ...
        return np.asarray(image if image.mode == "L" else image.convert("L")), None
    except (ValueError, OSError, TypeError) as err:
        raise NormalizeError(f"image mode {image.mode!r} cannot be read as grey levels ({err})") from None


def _median(values: np.ndarray) -> int:
    """Lower median of uint8 values, from their histogram (O(n), no sort)."""
    counts = np.cumsum(np.bincount(values.reshape(-1), minlength=256))
    return int(np.searchsorted(counts, (values.size - 1) // 2, side="right"))


def _two_level(grey: np.ndarray) -> bool:
    """A bitmap of ink and ground (a scan binarised, a dataset's digit): a wide range of grey with
    at most a tenth of the pixels in its middle half."""
    low, high = int(grey.min()), int(grey.max())
    quarter = (high - low) // 4
    return high - low >= 128 and np.count_nonzero((grey > low + quarter) & (grey < high - quarter)) <= grey.size // 10


def _edge(grey: np.ndarray) -> np.ndarray:
    """The image's outermost pixels, each once."""
    return np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])


def ink_map(image: Image.Image) -> tuple[np.ndarray, str]:
    """Ink strength in 0..1 per pixel (0 = background), and the polarity that was detected."""
    grey, alpha = _grey_and_alpha(image)
    if alpha is not None:
        opaque = alpha > 127
        if opaque.mean() < 0.5:
            return alpha.astype(np.float32) / 255, "alpha"
        grey = np.where(opaque, grey, _median(grey[opaque])).astype(np.uint8)
    background = _median(grey)
    if min(grey.shape) >= 3 and (background >= 128) != ((edge := _median(_edge(grey))) >= 128):
        # Ink over half the image (a digit stretched to fill a tight box, a thick pen) makes the
        # median the ink's level; the ground along most of the image's edge says which is which.
        # Dark ground on the edge of a light majority is trusted in two-level bitmaps and in images
        # as small as a dataset's digits alone: in a photo it is the desk round a sheet of paper.
        if background < 128 or _two_level(grey) or max(grey.shape) <= DATASET_SIZE:
            background = edge
    grey = grey.astype(np.float32)
    if background >= 128:
        return np.clip((background - grey) / 255, 0, 1), "dark-on-light"
    return np.clip((grey - background) / 255, 0, 1), "light-on-dark"


def _bounds(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Top, bottom, left, right (exclusive) of the ink's bounding box."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _clean(ink: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Drop faint ink, a printed form box around the digit, and specks; returns the ink cropped to
    the bounding box of what is left, and that box's top and left in ``ink``."""
    top = left = 0

    def crop(kept: np.ndarray) -> np.ndarray:  # labelling the crop is cheaper than the whole
        nonlocal top, left
        r0, r1, c0, c1 = _bounds(kept)
        top, left = top + r0, left + c0
        return kept[r0:r1, c0:c1]

    ink = crop(np.where(ink >= NOISE_FRACTION * ink.max(), ink, 0))
    labels, count = ndimage.label(ink > 0)
    if count > 1 and (box := form_box(labels, count)):
        ink = crop(np.where(np.isin(labels, box), 0, ink))
        labels, count = ndimage.label(ink > 0)
    if count > 1:
        sizes = np.bincount(labels.reshape(-1))[1:]
        keep = np.flatnonzero(sizes >= SPECK_FRACTION * sizes.max()) + 1
        ink = crop(np.where(np.isin(labels, keep), ink, 0))
    return ink, top, left


def form_box(labels: np.ndarray, count: int) -> list[int]:
    """The labels of a printed box drawn around the digit (a scanned form's cell), or [] if none.

    After cropping, such a box is the crop's own border. Take a margin ``m = max(2, min(h, w) // 8)``
    (wide enough for a scan rotated by up to 7 degrees) and the groups of ink that lie wholly within it (a
    printed line scanned thin breaks into several). They are a box if they run along at least three
    of the four sides, each over at least 3/5 of its length (one side of a form's cell can be too faint
    to survive step 4), and there is other ink inside, at least 1/20 as much (a square 0 alone is a
    digit, not a box). Integers only, so every port decides alike."""
    height, width = labels.shape
    if min(height, width) < 12:
        return []
    m = max(2, min(height, width) // 8)
    inside = labels[m:-m, m:-m]
    frame_labels = sorted(set(range(1, count + 1)) - set(np.unique(inside).tolist()))
    if not frame_labels:
        return []
    frame = np.isin(labels, frame_labels)
    covered = (frame[:m].any(0).sum(), frame[-m:].any(0).sum(), frame[:, :m].any(1).sum(), frame[:, -m:].any(1).sum())
    sides = sum(5 * int(c) >= 3 * side for c, side in zip(covered, (width, width, height, height)))
    if sides < 3 or 20 * int((inside > 0).sum()) < int(frame.sum()):
        return []
    return frame_labels


def _area_and_boundary(mask: np.ndarray) -> tuple[int, int]:
    """Ink pixels and boundary pixels of a binary mask, pinholes closed first (textured pencil or
    marker ink, JPEG speckle): their edges are not the stroke's, and counting them would make a thick
    stroke look thin and get it fattened."""
    mask = mask | (ndimage.binary_closing(np.pad(mask, 1))[1:-1, 1:-1])
    boundary = mask & ~ndimage.binary_erosion(mask)
    return int(mask.sum()), int(boundary.sum())


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: area / half the boundary length (a long stroke of length
    L and width w has area L·w and boundary ≈ 2L)."""
    area, boundary = _area_and_boundary(mask)
    return 2 * area / max(boundary, 1)


def thickening(longer: int, area: int, boundary: int) -> float:
    """How far (px) to grow strokes whose closed mask has this ``area`` and ``boundary`` in a crop
    whose longer side is ``longer``: 0 when they are thick enough. All in float64, in this order
    (the ports do the same: in float32 thousands of (longer, area, boundary) cases decide otherwise)."""
    width = 2 * area / max(boundary, 1)
    wanted = TARGET_STROKE * longer
    if width >= THIN_STROKE * wanted:
        return 0.0
    grow = (wanted - width) / 2
    return grow if grow >= 0.5 else 0.0


def _thicken(ink: np.ndarray) -> np.ndarray:
    """Grow thin strokes towards ``TARGET_STROKE`` of the longer side; thick ones are left alone."""
    mask = ink > 0
    grow = thickening(max(ink.shape), *_area_and_boundary(mask))
    if not grow:
        return ink
    pad = int(np.ceil(grow))
    # A Euclidean disk dilation by distance transform: one pass, whatever the radius (a maximum
    # filter over a disk costs the radius squared per pixel).
    grown = ndimage.distance_transform_edt(~np.pad(mask, pad)) <= grow
    return np.maximum(np.pad(ink / ink.max(), pad), grown.astype(np.float32))


@dataclass
class Ink:
    """The ink of an image, found and cleaned: what reading one digit (or several) starts from."""

    ink: np.ndarray  # float32 (h, w) in 0..1, cropped to the cleaned ink's bounding box
    box: tuple[int, int, int, int]  # that box in the image's pixels (as load_image gives it): x, y, width, height
    polarity: str  # "dark-on-light", "light-on-dark" or "alpha"


def find_ink(image: Image.Image) -> Ink:
    """Steps 2-3: the image's ink (either polarity, or a transparent canvas's alpha), without faint
    noise, a printed box around it, or specks; raises :class:`BlankImage` if there is none."""
    ink, polarity = ink_map(image)
    if ink.size == 0 or ink.max() < MIN_CONTRAST:
        raise BlankImage("no digit found: the image is blank")
    cleaned, top, left = _clean(ink)
    return Ink(cleaned, (left, top, cleaned.shape[1], cleaned.shape[0]), polarity)


def fit_digit(ink: np.ndarray) -> np.ndarray:
    """Steps 4-6: one piece of ink (float 0..1, cropped to its box) as MNIST draws a digit: thin
    strokes thickened, the longer side scaled to 20 px, the centre of mass at the centre of 28×28.
    uint8, white on black; raises :class:`BlankImage` if nothing is left to see at that size."""
    if not ink.any():
        raise BlankImage("no digit found: there is no ink")
    ink = _thicken(ink)
    scale = BOX / max(ink.shape)
    height, width_px = ink.shape
    size = (max(1, round(width_px * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(ink.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0, None)
    if small.max() <= 0:
        raise BlankImage("no digit found: the ink is too small to see")
    small = small / small.max()
    # MNIST's centres of mass sit at pixel (14, 14) of the field, to the nearest pixel. Summed in
    # float64, where float32 pixels times whole-pixel indices add up exactly in any order, so every
    # port rounds the same centre the same way.
    weights = small.astype(np.float64)
    mass = weights.sum()
    cy = weights.sum(1) @ np.arange(weights.shape[0]) / mass
    cx = weights.sum(0) @ np.arange(weights.shape[1]) / mass
    top, left = int(round(FIELD / 2 - cy)), int(round(FIELD / 2 - cx))
    top = min(max(top, 0), FIELD - small.shape[0])
    left = min(max(left, 0), FIELD - small.shape[1])
    field = np.zeros((FIELD, FIELD), np.float32)
    field[top : top + small.shape[0], left : left + small.shape[1]] = small
    return np.round(field * 255).astype(np.uint8)


def enlarge(ink: np.ndarray) -> np.ndarray:
    """A digit smaller than the 20 px box (a dataset's 16 px bitmap) enlarged by a whole factor to at
    least ``ENLARGED`` px, each pixel a square as a scanner's are: the fit then shrinks it to 20 px
    as it shrinks any other digit, instead of stretching a few pixels (whose resampling rings)."""
    longer = max(ink.shape)
    if longer >= BOX:
        return ink
    factor = -(-ENLARGED // longer)
    return np.repeat(np.repeat(ink, factor, axis=0), factor, axis=1)


def normalize(image: Image.Image) -> Normalized:
    """Normalise one digit image to MNIST's format (:func:`find_ink`, :func:`enlarge`, then
    :func:`fit_digit`); raises :class:`BlankImage` if it has no ink."""
    found = find_ink(image)
    return Normalized(fit_digit(enlarge(found.ink)), found.polarity)
