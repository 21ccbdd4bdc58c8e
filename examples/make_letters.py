"""Build an example dataset for `digitkit train --data`: handwritten letters (or math symbols), one
folder per class, as image files of any size and polarity, the way a user's own scans and drawings
would come.

Each image is a glyph from one of Debian's handwriting fonts (the fonts digitkit's synthetic digits
use; `apt-get install` the packages listed in src/digitkit/data/extra/README.md) or a Hershey stroke
font, distorted like a different writer (thicker or thinner stroke, slant, rotation, aspect,
elastic warp) and saved as a PNG: dark ink on light paper, light on dark, or ink on a transparent
canvas.

    python examples/make_letters.py letters/                    # A..Z, 100 images per letter
    python examples/make_letters.py letters/ --per-class 30 --classes ABC
    python examples/make_letters.py symbols/ --classes '+-=x÷<>'  # math signs ('x' for times)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from digitkit.data import handwriting as hw

NAMES = {"+": "plus", "-": "minus", "=": "equals", "x": "times", "÷": "divide", "<": "less", ">": "greater",
         "?": "question", "!": "exclamation", "%": "percent", "/": "slash"}


def sources(char: str) -> list:
    """Ways to draw ``char``: (kind, data) for each training font and Hershey design that has it."""
    found = []
    for path in hw.font_paths():
        glyph = hw.font_glyph(path, char)
        if glyph is not None:
            found.append(("font", glyph))
    for name in hw.TRAINING_HERSHEY:
        path = hw.HERSHEY_ROOT / f"{name}.jhf"
        if path.is_file():
            strokes = hw.hershey_glyphs(path).get(char)
            if strokes:
                found.append(("strokes", hw.to_unit_box(strokes)))
    return found


def render(kind: str, data, rng: np.random.Generator) -> Image.Image:
    ink = hw.distort_glyph(data, rng) if kind == "font" else hw.pen_digit(data, rng)
    ink = np.pad(ink, int(max(ink.shape) * rng.uniform(0.05, 0.5)))
    alpha = (np.clip(ink, 0, 1) * 255).astype(np.uint8)
    style = rng.choice(["dark on light", "light on dark", "transparent"], p=[0.6, 0.2, 0.2])
    if style == "transparent":
        rgba = np.zeros(alpha.shape + (4,), np.uint8)
        rgba[..., :3] = rng.integers(0, 90, 3)
        rgba[..., 3] = alpha
        return Image.fromarray(rgba, "RGBA")
    paper, pen = (rng.uniform(200, 255), rng.uniform(0, 80)) if style == "dark on light" else (rng.uniform(0, 50), 255)
    grey = paper + (pen - paper) * (alpha / 255.0) + rng.normal(0, 3, alpha.shape)
    return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to create (one subfolder per class)")
    parser.add_argument("--classes", default="ABCDEFGHIJKLMNOPQRSTUVWXYZ", help="characters, one class each")
    parser.add_argument("--per-class", type=int, default=100, help="images per class (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    for char in dict.fromkeys(args.classes):
        found = sources(char)
        if not found:
            raise SystemExit(f"no font has {char!r}: install the fonts in src/digitkit/data/extra/README.md")
        folder = out / NAMES.get(char, char)
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(args.per_class):
            kind, data = found[rng.integers(len(found))]
            render(kind, data, rng).save(folder / f"{n:04d}.png")
        print(f"{folder}: {args.per_class} images from {len(found)} fonts")


if __name__ == "__main__":
    main()
