"""The pen: smooth curves through points, imaginary writers that distort them, and a round pen that
draws them anti-aliased, as a canvas in a drawing app does. Every stroke source (skeletons, Hershey
fonts, real pen trajectories, non-digit shapes) is drawn with it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


def smooth_curve(points, steps: int = 8) -> np.ndarray:
    """A Catmull-Rom curve through ``points`` (ends repeated), sampled ``steps`` times per span."""
    p = np.asarray(points, np.float64)
    if len(p) < 3:
        return p
    p = np.vstack([p[:1], p, p[-1:]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    out.append(p[-2:-1])
    return np.vstack(out)


@dataclass(frozen=True)
class Writer:
    """How one imaginary writer distorts a skeleton: drawn from ``rng`` for each sample."""

    slant: float  # shear of x by y (positive leans right)
    rotation: float  # radians
    aspect: float  # width multiplier
    jitter: float  # std of control-point noise, in units of the digit's height
    pen: float  # pen width as a fraction of the digit's height

    @classmethod
    def draw(cls, rng: np.random.Generator, pen: tuple[float, float] = (0.05, 0.2)) -> "Writer":
        return cls(slant=rng.normal(0.1, 0.2), rotation=math.radians(rng.normal(0, 6)),
                   aspect=rng.uniform(0.7, 1.3), jitter=rng.uniform(0.005, 0.03),
                   pen=math.exp(rng.uniform(math.log(pen[0]), math.log(pen[1]))))

    def apply(self, strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """Strokes in the unit box → distorted strokes (same units, centred near 0.5)."""
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        out = []
        for s in strokes:
            x, y = s[:, 0] - 0.5, s[:, 1] - 0.5
            # Smooth wobble along the stroke: low-frequency noise, then per-point noise.
            wobble = ndimage.gaussian_filter1d(rng.normal(0, self.jitter * 3, s.shape), sigma=4, axis=0, mode="nearest")
            x, y = x + wobble[:, 0], y + wobble[:, 1]
            x = (x - self.slant * y) * self.aspect
            out.append(np.stack([cos * x - sin * y, sin * x + cos * y], axis=1) + 0.5)
        return out


def draw_strokes(strokes: list[np.ndarray], height: float, pen_px: float, canvas: tuple[int, int],
                 offset: tuple[float, float]) -> np.ndarray:
    """Strokes (unit-box coordinates) drawn with a round pen on a black canvas: ink in 0..1.

    Drawn at 4x and reduced, so the edges are anti-aliased like a canvas or a scan."""
    ss = 4
    width, h = canvas
    image = Image.new("L", (width * ss, h * ss), 0)
    draw = ImageDraw.Draw(image)
    radius = max(pen_px * ss / 2, 0.5)
    for s in strokes:
        pts = [((offset[0] + x * height) * ss, (offset[1] + y * height) * ss) for x, y in s]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=max(1, round(2 * radius)), joint="curve")
        for px, py in (pts[0], pts[-1]):  # round caps
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=255)
    return np.asarray(image.reduce(ss), np.float32) / 255


def pen_digit(strokes: list[np.ndarray], rng: np.random.Generator, writer: Writer | None = None,
              height: float | None = None) -> np.ndarray:
    """One digit drawn by a random writer: ink in 0..1 on a canvas a little larger than the digit."""
    writer = writer or Writer.draw(rng)
    shaped = writer.apply(strokes, rng)
    height = height or rng.uniform(40, 160)
    pen_px = max(1.0, writer.pen * height)
    points = np.vstack(shaped)
    lo, hi = points.min(0), points.max(0)
    margin = pen_px + 4
    canvas = (int((hi[0] - lo[0]) * height + 2 * margin) + 1, int((hi[1] - lo[1]) * height + 2 * margin) + 1)
    offset = (margin - lo[0] * height, margin - lo[1] * height)
    return draw_strokes(shaped, height, pen_px, canvas, offset)


def to_unit_box(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """Scale strokes so the glyph is 1 high, with its top-left at (0, 0) (keeps the aspect ratio)."""
    points = np.vstack(strokes)
    lo, hi = points.min(0), points.max(0)
    height = max(hi[1] - lo[1], 1e-6)
    return [(s - lo) / height for s in strokes]


def drawing(strokes: list[np.ndarray], rng: np.random.Generator, writer: Writer | None = None,
            pen_scale: float = 1.0) -> Image.Image:
    """Strokes (unit-box coordinates) as a drawing app saves them: half as the web page does (280 px
    canvas, 20 px round pen, uploaded as a 140 px PNG), half as other apps do (canvas 200-700 px,
    pen 3-35 px at 400 px); the digit 35-85% of the canvas, anywhere on it."""
    page = rng.random() < 0.5
    canvas = 280 if page else int(rng.integers(200, 700))
    pen = (20.0 if page else float(rng.uniform(3, 35)) * canvas / 400) * pen_scale
    shaped = (writer or Writer.draw(rng)).apply(strokes, rng)
    points = np.vstack(shaped)
    lo, hi = points.min(0), points.max(0)
    height = canvas * rng.uniform(0.35, 0.85) / max(hi[1] - lo[1], (hi[0] - lo[0]) * 0.8, 1e-6)
    room = np.maximum(canvas - (hi - lo) * height - pen, 1)
    offset = rng.uniform(pen / 2, room + pen / 2) - lo * height
    ink = draw_strokes(shaped, height, pen, (canvas, canvas), tuple(offset))
    return canvas_image(ink, rng, page)


def canvas_image(ink: np.ndarray, rng: np.random.Generator, page: bool = False) -> Image.Image:
    """Ink (0..1) as a saved canvas: the web page's (dark ink on white, halved, RGBA PNG), or another
    app's: black on white, white on black, or coloured ink on a transparent canvas."""
    alpha = (np.clip(ink, 0, 1) * 255).astype(np.uint8)
    if page:
        grey = 255 - (alpha.astype(np.float32) * (255 - 17) / 255)
        image = Image.fromarray(grey.astype(np.uint8), "L").convert("RGBA")
        return image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
    kind = rng.choice(["black on white", "white on black", "transparent"])
    if kind == "transparent":
        rgba = np.zeros(ink.shape + (4,), np.uint8)
        rgba[..., :3] = rng.integers(0, 80, 3) if rng.random() < 0.8 else rng.integers(180, 256, 3)
        rgba[..., 3] = alpha
        return Image.fromarray(rgba, "RGBA")
    grey = alpha if kind == "white on black" else 255 - alpha
    return Image.fromarray(grey, "L").convert(rng.choice(["L", "RGB", "RGBA"]))

