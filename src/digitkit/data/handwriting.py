"""Synthetic handwriting: characters drawn the way other writers draw them.

MNIST has about 500 writers, mostly American: no crossed 7s, few 1s with a flag and a foot, few
open 4s. To read other people, digitkit trains on MNIST plus digits made here from three sources,
each passed through the same normalisation as ``digitkit predict`` (so the model learns what it
will be shown):

- **pen strokes**: hand-made skeletons of each digit in several styles (the ones MNIST lacks
  included), distorted like a different writer each time (slant, rotation, aspect, jittered control
  points) and drawn with a round pen of random width, as the web page and the iOS app draw;
- **handwriting fonts** (Debian's fonts-bwht, fonts-comic-neue, fonts-kiloji, …): glyphs rendered
  large, then thickened or thinned, slanted and elastically distorted like a scan;
- **Hershey stroke fonts** (Debian's hershey-fonts-data): single-line glyphs drawn as pen strokes.

Fonts are split: those in ``TRAINING_FONTS`` make training data, the benchmark
(benchmarks/real_handwriting.py) uses only others. The training set is built once by
``python -m digitkit.data.handwriting`` into ``digitkit/data/extra/`` (committed and shipped with
the package, so training needs no fonts installed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from digitkit import DigitkitError
from digitkit.data.normalize import NormalizeError, normalize

FONT_ROOT = Path("/usr/share/fonts")
HERSHEY_ROOT = Path("/usr/share/hershey-fonts")
EXTRA_DIR = Path(__file__).with_name("extra")  # the built training set

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
TRAINING_HERSHEY = ("futural", "scripts")  # the simplex and script designs; the benchmark uses others
DIGITS = "0123456789"


# -- pen-stroke skeletons ------------------------------------------------------------------------
# Each style is a list of strokes; a stroke is a list of pieces; a piece is a list of (x, y) points
# in a unit box (x right, y down) joined by a smooth curve. Pieces of one stroke meet at corners.
def _arc(cx, cy, rx, ry, start, end, n=9):
    angles = np.radians(np.linspace(start, end, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


STYLES: dict[str, dict[str, list]] = {
    "0": {
        "oval": [[_arc(0.5, 0.5, 0.3, 0.47, -90, -455, 13)]],
        "narrow": [[_arc(0.5, 0.5, 0.18, 0.47, -80, -440, 13)]],
        "open top": [[_arc(0.5, 0.52, 0.3, 0.45, -70, -400, 12)]],
    },
    "1": {
        "stick": [[[(0.5, 0.04), (0.5, 0.96)]]],
        "flag": [[[(0.3, 0.26), (0.53, 0.04)], [(0.53, 0.04), (0.53, 0.96)]]],
        "flag and foot": [[[(0.28, 0.24), (0.54, 0.04)], [(0.54, 0.04), (0.54, 0.95)]], [[(0.28, 0.96), (0.8, 0.96)]]],
        "long flag": [[[(0.12, 0.45), (0.56, 0.04)], [(0.56, 0.04), (0.56, 0.96)]]],
        "flag, slanted": [[[(0.35, 0.22), (0.62, 0.04)], [(0.62, 0.04), (0.45, 0.96)]]],
        "short steep flag": [[[(0.4, 0.2), (0.56, 0.03)], [(0.56, 0.03), (0.55, 0.96)]]],
        "long flag and foot": [[[(0.14, 0.42), (0.56, 0.04)], [(0.56, 0.04), (0.56, 0.95)]], [[(0.3, 0.96), (0.82, 0.96)]]],
        "curved flag": [[[(0.25, 0.34), (0.42, 0.16), (0.58, 0.03)], [(0.58, 0.03), (0.56, 0.96)]]],
    },
    "2": {
        "classic": [[[(0.2, 0.27), (0.33, 0.08), (0.55, 0.04), (0.75, 0.16), (0.72, 0.4), (0.2, 0.95)],
                     [(0.2, 0.95), (0.84, 0.93)]]],
        "loop": [[[(0.2, 0.25), (0.38, 0.05), (0.66, 0.08), (0.74, 0.3), (0.55, 0.58), (0.32, 0.78), (0.16, 0.92),
                   (0.24, 1.0), (0.4, 0.9), (0.42, 0.8), (0.5, 0.86), (0.86, 0.95)]]],
        "angular": [[[(0.18, 0.12), (0.45, 0.04), (0.75, 0.12), (0.78, 0.3)], [(0.78, 0.3), (0.18, 0.95)],
                     [(0.18, 0.95), (0.85, 0.95)]]],
    },
    "3": {
        "round": [[[(0.22, 0.16), (0.45, 0.03), (0.7, 0.12), (0.68, 0.36), (0.42, 0.48)],
                   [(0.42, 0.48), (0.72, 0.6), (0.74, 0.85), (0.47, 0.98), (0.17, 0.87)]]],
        "flat top": [[[(0.2, 0.05), (0.8, 0.05)], [(0.8, 0.05), (0.45, 0.42)],
                      [(0.45, 0.42), (0.76, 0.56), (0.76, 0.83), (0.45, 0.98), (0.18, 0.86)]]],
    },
    "4": {
        "closed": [[[(0.64, 0.04), (0.14, 0.66)], [(0.14, 0.66), (0.88, 0.66)]], [[(0.64, 0.04), (0.64, 0.97)]]],
        "open": [[[(0.24, 0.04), (0.2, 0.56)], [(0.2, 0.56), (0.84, 0.56)]], [[(0.66, 0.06), (0.66, 0.97)]]],
        "open, slanted": [[[(0.3, 0.04), (0.16, 0.58)], [(0.16, 0.58), (0.86, 0.54)]], [[(0.72, 0.04), (0.6, 0.97)]]],
        "one stroke": [[[(0.26, 0.04), (0.22, 0.56)], [(0.22, 0.56), (0.7, 0.56)], [(0.7, 0.56), (0.7, 0.06)],
                        [(0.7, 0.06), (0.68, 0.97)]]],
        "tall closed": [[[(0.55, 0.04), (0.16, 0.7)], [(0.16, 0.7), (0.86, 0.7)]], [[(0.58, 0.3), (0.6, 0.97)]]],
    },
    "5": {
        "classic": [[[(0.74, 0.05), (0.32, 0.05)]],
                    [[(0.32, 0.05), (0.27, 0.45)],
                     [(0.27, 0.45), (0.52, 0.38), (0.76, 0.56), (0.72, 0.86), (0.44, 0.98), (0.18, 0.88)]]],
        "one stroke": [[[(0.76, 0.05), (0.3, 0.06)], [(0.3, 0.06), (0.26, 0.46)],
                        [(0.26, 0.46), (0.56, 0.4), (0.78, 0.62), (0.68, 0.9), (0.4, 0.98), (0.2, 0.86)]]],
        "round belly": [[[(0.34, 0.05), (0.3, 0.42)], [(0.3, 0.42), (0.6, 0.4), (0.78, 0.68), (0.58, 0.96), (0.22, 0.9)]],
                        [[(0.34, 0.05), (0.78, 0.04)]]],
    },
    "6": {
        "classic": [[[(0.7, 0.07), (0.45, 0.1), (0.26, 0.4), (0.23, 0.75), (0.45, 0.97), (0.72, 0.83), (0.7, 0.6),
                      (0.45, 0.52), (0.24, 0.68)]]],
        "straight stem": [[[(0.64, 0.03), (0.28, 0.56)],
                           [(0.28, 0.56), (0.26, 0.82), (0.5, 0.97), (0.73, 0.8), (0.64, 0.58), (0.4, 0.56),
                            (0.28, 0.68)]]],
    },
    "7": {
        "plain": [[[(0.15, 0.07), (0.86, 0.07)], [(0.86, 0.07), (0.4, 0.97)]]],
        "crossed": [[[(0.15, 0.07), (0.86, 0.07)], [(0.86, 0.07), (0.42, 0.97)]], [[(0.38, 0.52), (0.84, 0.5)]]],
        "serif": [[[(0.14, 0.22), (0.15, 0.07)], [(0.15, 0.07), (0.86, 0.07)], [(0.86, 0.07), (0.42, 0.97)]]],
        "curved stem": [[[(0.15, 0.08), (0.86, 0.07)], [(0.86, 0.07), (0.62, 0.42), (0.5, 0.97)]]],
        "crossed, curved": [[[(0.16, 0.1), (0.5, 0.05), (0.86, 0.07)], [(0.86, 0.07), (0.6, 0.45), (0.5, 0.97)]],
                            [[(0.36, 0.5), (0.82, 0.47)]]],
        "narrow": [[[(0.3, 0.1), (0.8, 0.08)], [(0.8, 0.08), (0.48, 0.97)]]],
        "wide bar": [[[(0.06, 0.1), (0.94, 0.08)], [(0.94, 0.08), (0.52, 0.97)]]],
        "crossed low": [[[(0.14, 0.07), (0.86, 0.07)], [(0.86, 0.07), (0.42, 0.97)]], [[(0.34, 0.6), (0.76, 0.58)]]],
    },
    "8": {
        "one stroke": [[[(0.7, 0.14), (0.5, 0.03), (0.28, 0.14), (0.31, 0.35), (0.7, 0.62), (0.73, 0.87),
                         (0.5, 0.98), (0.27, 0.87), (0.3, 0.62), (0.7, 0.35), (0.72, 0.15), (0.52, 0.03)]]],
        "two loops": [[_arc(0.5, 0.26, 0.2, 0.23, -90, -455, 11)], [_arc(0.5, 0.73, 0.26, 0.26, -90, 275, 11)]],
        "small top loop": [[[(0.62, 0.12), (0.5, 0.03), (0.36, 0.12), (0.4, 0.28), (0.7, 0.55), (0.74, 0.85),
                             (0.5, 0.98), (0.26, 0.85), (0.32, 0.55), (0.6, 0.3), (0.63, 0.13), (0.52, 0.04)]]],
        "narrow": [[[(0.62, 0.14), (0.5, 0.03), (0.36, 0.14), (0.4, 0.36), (0.62, 0.62), (0.64, 0.87),
                     (0.5, 0.98), (0.36, 0.87), (0.38, 0.62), (0.6, 0.35), (0.63, 0.15), (0.52, 0.03)]]],
        "tiny top loop": [[[(0.62, 0.1), (0.54, 0.02), (0.46, 0.1), (0.5, 0.24), (0.72, 0.5), (0.76, 0.8),
                            (0.52, 0.98), (0.26, 0.82), (0.3, 0.52), (0.52, 0.26), (0.62, 0.11)]]],
    },
    "9": {
        "straight tail": [[_arc(0.48, 0.3, 0.26, 0.26, 0, -360, 12), [(0.74, 0.3), (0.72, 0.97)]]],
        "small loop, long tail": [[_arc(0.45, 0.2, 0.2, 0.18, 0, -360, 11), [(0.65, 0.2), (0.62, 0.97)]]],
        "curved tail": [[_arc(0.48, 0.3, 0.26, 0.26, 0, -360, 12), [(0.74, 0.3), (0.7, 0.74), (0.5, 0.97), (0.3, 0.9)]]],
        "slanted tail": [[_arc(0.55, 0.28, 0.25, 0.24, 0, -360, 12), [(0.8, 0.28), (0.45, 0.97)]]],
    },
}


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


def style_strokes(style: list) -> list[np.ndarray]:
    """A style's strokes as point arrays (each piece smoothed, corners kept where pieces meet)."""
    strokes = []
    for stroke in style:
        pieces = [smooth_curve(piece) for piece in stroke]
        strokes.append(np.vstack(pieces))
    return strokes


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


# -- fonts -----------------------------------------------------------------------------------------
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


# -- Hershey stroke fonts --------------------------------------------------------------------------
def hershey_glyphs(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Glyphs of a Hershey ``.jhf`` font in ASCII order from space: char → strokes (x right, y down)."""
    text = Path(path).read_text(encoding="latin-1").replace("\n", "")
    glyphs, pos, code = {}, 0, 32
    while pos + 8 <= len(text):
        count = int(text[pos + 5 : pos + 8])
        body = text[pos + 8 : pos + 8 + 2 * count]
        pos += 8 + 2 * count
        strokes, current = [], []
        for i in range(2, len(body) - 1, 2):  # the first pair is the glyph's left and right bounds
            pair = body[i : i + 2]
            if pair == " R":
                if current:
                    strokes.append(np.array(current, np.float64))
                current = []
            else:
                current.append((ord(pair[0]) - ord("R"), ord(pair[1]) - ord("R")))
        if current:
            strokes.append(np.array(current, np.float64))
        glyphs[chr(code)] = strokes
        code += 1
    return glyphs


def to_unit_box(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """Scale strokes so the glyph is 1 high, with its top-left at (0, 0) (keeps the aspect ratio)."""
    points = np.vstack(strokes)
    lo, hi = points.min(0), points.max(0)
    height = max(hi[1] - lo[1], 1e-6)
    return [(s - lo) / height for s in strokes]


# -- the training set ----------------------------------------------------------------------------
def _normalized(ink: np.ndarray) -> np.ndarray | None:
    try:
        return normalize(Image.fromarray(np.clip(ink * 255, 0, 255).astype(np.uint8), "L")).image
    except NormalizeError:
        return None


def font_paths(names=TRAINING_FONTS, root: Path = FONT_ROOT) -> list[Path]:
    return [root / name for name in names if (root / name).is_file()]


def build(per_style: int = 120, per_font_glyph: int = 24, per_hershey_glyph: int = 40,
          seed: int = 0, progress=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N, 28, 28) uint8, labels (N,) and a source name per image, from the training sources."""
    rng = np.random.default_rng(seed)
    images, labels, sources = [], [], []

    def add(ink, digit, source):
        image = _normalized(ink)
        if image is not None:
            images.append(image)
            labels.append(int(digit))
            sources.append(source)

    for digit, styles in STYLES.items():
        for name, style in styles.items():
            strokes = style_strokes(style)
            for _ in range(per_style):
                add(pen_digit(strokes, rng), digit, f"pen:{name}")
        if progress:
            progress(f"pen strokes {digit}")
    for path in font_paths():
        for digit in DIGITS:
            glyph = font_glyph(path, digit)
            if glyph is None:
                continue
            for _ in range(per_font_glyph):
                add(distort_glyph(glyph, rng), digit, f"font:{path.name}")
        if progress:
            progress(f"font {path.name}")
    for name in TRAINING_HERSHEY:
        path = HERSHEY_ROOT / f"{name}.jhf"
        if not path.is_file():
            continue
        glyphs = hershey_glyphs(path)
        for digit in DIGITS:
            strokes = to_unit_box(glyphs[digit])
            for _ in range(per_hershey_glyph):
                add(pen_digit(strokes, rng), digit, f"hershey:{name}")
        if progress:
            progress(f"hershey {name}")
    order = rng.permutation(len(images))
    return np.stack(images)[order], np.array(labels, np.uint8)[order], [sources[i] for i in order]


def load_extra_digits(folder: Path = EXTRA_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The built training set: images (N, 28, 28) uint8 and digit labels (N,)."""
    from digitkit.data.idx import read_idx

    images = read_idx(folder / "images-idx3-ubyte.gz", 3, (None, 28, 28))
    labels = read_idx(folder / "labels-idx1-ubyte.gz", 1)
    if len(images) != len(labels) or labels.max(initial=0) > 9:
        raise DigitkitError(f"{folder}: the handwriting training set is inconsistent; rebuild it "
                            "(python -m digitkit.data.handwriting)")
    return images, labels


def main(argv: list[str] | None = None) -> None:
    """``python -m digitkit.data.handwriting [OUT_DIR]``: rebuild the committed training set."""
    import argparse
    import json
    from collections import Counter

    from digitkit.data.idx import write_idx

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", nargs="?", default=str(EXTRA_DIR))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    missing = [name for name in TRAINING_FONTS if not (FONT_ROOT / name).is_file()]
    if missing:
        raise SystemExit(f"missing fonts (apt-get install the packages listed in {EXTRA_DIR / 'README.md'}): {missing}")
    images, labels, sources = build(seed=args.seed, progress=print)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_idx(out / "images-idx3-ubyte.gz", images)
    write_idx(out / "labels-idx1-ubyte.gz", labels)
    counts = Counter(s.split(":")[0] for s in sources)
    (out / "sources.json").write_text(json.dumps({"seed": args.seed, "count": len(labels), "by_kind": counts,
                                                  "per_digit": np.bincount(labels, minlength=10).tolist(),
                                                  "sources": sorted(set(sources))}, indent=1) + "\n")
    print(f"wrote {len(labels)} images to {out}")


if __name__ == "__main__":
    main()
