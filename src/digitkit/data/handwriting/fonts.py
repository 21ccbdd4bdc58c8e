"""Handwriting fonts (Debian's fonts-bwht, fonts-comic-neue, fonts-kiloji, …): glyphs rendered large,
then thickened or thinned, slanted and elastically distorted like a scan.

Fonts are split: those in ``TRAINING_FONTS`` make training data, the benchmark
(benchmarks/real_handwriting.py) uses only others."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from digitkit import DigitkitError

FONT_ROOT = Path("/usr/share/fonts")

# Fonts that make training data (paths under FONT_ROOT). The benchmark must use none of these.
TRAINING_FONTS = (
    "opentype/bwht/BecauseWeBuild-Regular.otf", "opentype/bwht/BecauseWeConnect-Regular.otf",
    "opentype/bwht/BecauseWeCreate-Regular.otf", "opentype/bwht/BecauseWeLearn-Regular.otf",
    "opentype/comic-neue/ComicNeue-Regular.otf", "opentype/comic-neue/ComicNeue-Bold.otf",
    "opentype/comic-neue/ComicNeue-Italic.otf", "opentype/comic-neue/ComicNeue-Light.otf",
    "opentype/dancingscript/DancingScript-Regular.otf", "opentype/dancingscript/DancingScript-Bold.otf",
    "opentype/havana/Havana-Regular.otf", "opentype/kaushanscript/KaushanScript-Regular.otf",
    "opentype/lobster/lobster.otf", "truetype/breip/Breip.ttf", "truetype/humor-sans/Humor-Sans.ttf",
    "truetype/kiloji/kiloji.ttf", "truetype/kiloji/kiloji_b.ttf", "truetype/kiloji/kiloji_p.ttf",
    "truetype/klee/KleeOne-Regular.ttf", "truetype/klee/KleeOne-SemiBold.ttf", "truetype/kristi/Kristi.ttf",
    "truetype/leckerli-one/LeckerliOne-Regular.ttf", "truetype/rufscript/Rufscript010.ttf",
    "truetype/seto/setofont.ttf", "truetype/sjfonts/Delphine.ttf", "truetype/tomsontalks/TomsonTalks.ttf",
    "truetype/yozvox-yozfont/YOzRN_.ttf", "truetype/yozvox-yozfont/YOzBN_i.ttf",
)


def font_glyph(font_path: str | Path, char: str, size: int = 120) -> np.ndarray | None:
    """A font's glyph as ink in 0..1 (cropped), or None if the font has no visible glyph for it."""
    try:
        font = ImageFont.truetype(str(font_path), size)
    except OSError as err:
        raise DigitkitError(f"{font_path}: cannot load font ({err})") from None
    left, top, right, bottom = font.getbbox(char)
    if right - left < 2 or bottom - top < 2:
        return None
    image = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(image).text((4 - left, 4 - top), char, font=font, fill=255)
    ink = np.asarray(image, np.float32) / 255
    if ink.max() < 0.5 or _is_tofu(ink):
        return None
    return ink


def _is_tofu(ink: np.ndarray) -> bool:
    """A missing-glyph box: ink along all four edges and an empty middle."""
    mask = ink > 0.5
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = box.shape
    if h < 6 or w < 6:
        return False
    edges = box[0].mean() > 0.8 and box[-1].mean() > 0.8 and box[:, 0].mean() > 0.8 and box[:, -1].mean() > 0.8
    return bool(edges and box[h // 4 : -h // 4, w // 4 : -w // 4].mean() < 0.1)


def distort_glyph(ink: np.ndarray, rng: np.random.Generator, elastic: float = 1.0) -> np.ndarray:
    """A glyph as a different scan: thicker or thinner stroke, slant, rotation, aspect, elastic warp."""
    height = ink.shape[0]
    change = rng.uniform(-0.04, 0.06) * height  # stroke width change, px
    radius = int(round(abs(change) / 2))
    if radius:
        yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        disk = yy**2 + xx**2 <= radius**2
        ink = np.pad(ink, radius + 2)
        ink = ndimage.grey_dilation(ink, footprint=disk) if change > 0 else ndimage.grey_erosion(ink, footprint=disk)
        if ink.max() < 0.3:
            return ink  # thinned away: the caller skips empty results
    pad = height // 3
    ink = np.pad(ink, pad)
    h, w = ink.shape
    slant, rotation, aspect = rng.normal(0.05, 0.15), math.radians(rng.normal(0, 6)), rng.uniform(0.75, 1.25)
    cos, sin = math.cos(rotation), math.sin(rotation)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[aspect, -slant * aspect], [0, 1]])
    inverse = np.linalg.inv(forward)  # output (x, y) → input (x, y)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x0, y0 = xx - w / 2, yy - h / 2
    sx = inverse[0, 0] * x0 + inverse[0, 1] * y0 + w / 2
    sy = inverse[1, 0] * x0 + inverse[1, 1] * y0 + h / 2
    if elastic:
        sigma, alpha = height * rng.uniform(0.08, 0.15), height * rng.uniform(0.02, 0.06) * elastic
        for grid in (sx, sy):
            grid += ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)).astype(np.float32), sigma) * alpha * sigma
    return ndimage.map_coordinates(ink, [sy, sx], order=1, mode="constant")


def font_paths(names=TRAINING_FONTS, root: Path = FONT_ROOT) -> list[Path]:
    return [root / name for name in names if (root / name).is_file()]
