"""The training set of other writers, built once and shipped in ``digitkit/data/extra/`` (so training
needs no fonts): every image passed through the same normalisation as ``digitkit predict``, so the
model learns what it will be shown.

Three parts, each its own pair of IDX files (``sources.json`` counts them by source):

- ``synthetic``: pen-stroke skeletons, handwriting fonts and Hershey designs (``images-…``);
- ``pendigits``: the real pen digits of the training writers, each rendered twice as drawing apps save
  drawings (``pendigits-…``); ``pendigits-calibration``: those of the calibration writers, for the
  validation split and the temperature only (``pendigits-calibration-…``);
- ``non-digits``: drawings that are not digits, to be answered with no confidence (``non-digits-…``).

``python -m digitkit.data.handwriting [--only PART]`` rebuilds them (deterministic for a seed).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from digitkit import DigitkitError
from digitkit.data.handwriting import fonts, hershey, pendigits, shapes
from digitkit.data.handwriting.pen import Writer, drawing, pen_digit, to_unit_box
from digitkit.data.handwriting.skeletons import STYLES, style_strokes
from digitkit.data.normalize import NormalizeError, normalize

EXTRA_DIR = Path(__file__).parents[1] / "extra"
DIGITS = "0123456789"
PARTS = {"synthetic": "", "pendigits": "pendigits-", "pendigits-calibration": "pendigits-calibration-",
         "non-digits": "non-digits-"}  # file-name prefixes


def normalized(source: np.ndarray | Image.Image) -> np.ndarray | None:
    """Ink in 0..1 (or a saved drawing) → the 28×28 uint8 input; None if nothing is left to see."""
    if isinstance(source, np.ndarray):
        source = Image.fromarray(np.clip(source * 255, 0, 255).astype(np.uint8), "L")
    try:
        return normalize(source).image
    except NormalizeError:
        return None


class _Collector:
    def __init__(self):
        self.images, self.labels, self.sources = [], [], []

    def add(self, source, label: int, name: str) -> None:
        image = normalized(source)
        if image is not None:
            self.images.append(image)
            self.labels.append(label)
            self.sources.append(name)

    def result(self, rng: np.random.Generator):
        order = rng.permutation(len(self.images))
        return (np.stack(self.images)[order], np.array(self.labels, np.uint8)[order],
                [self.sources[i] for i in order])


def build_synthetic(per_style: int = 120, per_font_glyph: int = 24, per_hershey_glyph: int = 40,
                    seed: int = 0, progress=None):
    """Images (N, 28, 28) uint8, labels (N,) and a source name per image, from the generated sources."""
    rng = np.random.default_rng(seed)
    out = _Collector()
    for digit, styles in STYLES.items():
        for name, style in styles.items():
            strokes = style_strokes(style)
            for _ in range(per_style):
                out.add(pen_digit(strokes, rng), int(digit), f"pen:{name}")
        if progress:
            progress(f"pen strokes {digit}")
    for path in fonts.font_paths():
        for digit in DIGITS:
            glyph = fonts.font_glyph(path, digit)
            if glyph is None:
                continue
            for _ in range(per_font_glyph):
                out.add(fonts.distort_glyph(glyph, rng), int(digit), f"font:{path.name}")
        if progress:
            progress(f"font {path.name}")
    for name in hershey.TRAINING_HERSHEY:
        path = hershey.HERSHEY_ROOT / f"{name}.jhf"
        if not path.is_file():
            continue
        glyphs = hershey.hershey_glyphs(path)
        for digit in DIGITS:
            strokes = to_unit_box(glyphs[digit])
            for _ in range(per_hershey_glyph):
                out.add(pen_digit(strokes, rng), int(digit), f"hershey:{name}")
        if progress:
            progress(f"hershey {name}")
    return out.result(rng)


def build_pendigits(renders: int = 2, squared: float = 0.25, seed: int = 0, progress=None, calibration: bool = False):
    """The training writers' pen digits (or the calibration writers'), each rendered ``renders``
    times as a saved drawing, and a ``squared`` fraction once more widened towards a square with a
    marker (box-filling digits)."""
    rng = np.random.default_rng(seed + calibration)
    out = _Collector()
    train, calibrate, _ = pendigits.split_by_writer(pendigits.read_pendigits())
    for i, digit in enumerate(calibrate if calibration else train):
        for _ in range(renders):
            out.add(pendigits.render(digit, rng), digit.label, f"pendigits:writer{digit.writer + 1}")
        if rng.random() < squared:
            out.add(pendigits.render(digit, rng, squared=True), digit.label, f"pendigits-squared:writer{digit.writer + 1}")
        if progress and i % 1000 == 999:
            progress(f"pen digits {i + 1}")
    return out.result(rng)


def letter_sources(font_names=fonts.TRAINING_FONTS, hershey_names=hershey.TRAINING_HERSHEY,
                   letters: str = shapes.LETTERS) -> list[tuple[str, str, object]]:
    """(name, kind, data) for every letter of ``letters`` in these fonts ("font": a glyph image) and
    Hershey designs ("strokes")."""
    found = []
    for path in fonts.font_paths(font_names):
        for char in letters:
            glyph = fonts.font_glyph(path, char)
            if glyph is not None:
                found.append((f"{path.stem}:{char}", "font", glyph))
    for name in hershey_names:
        path = hershey.HERSHEY_ROOT / f"{name}.jhf"
        if path.is_file():
            glyphs = hershey.hershey_glyphs(path)
            found += [(f"{name}:{c}", "strokes", to_unit_box(glyphs[c])) for c in letters if glyphs.get(c)]
    return found


def non_digit(kind: str, rng: np.random.Generator, letters: list | None = None) -> Image.Image | np.ndarray:
    """One drawing of a kind of non-digit: a saved drawing, or ink (a letter glyph from a font)."""
    if kind == "dot":
        return shapes.dot(rng)
    if kind == "letter":
        _, how, data = letters[int(rng.integers(len(letters)))]
        return fonts.distort_glyph(data, rng) if how == "font" else drawing(data, rng, Writer.draw(rng))
    return drawing(shapes.shape_strokes(kind, rng), rng, Writer.draw(rng))


def build_non_digits(per_kind: int = 300, seed: int = 0, kinds=shapes.TRAINING_KINDS, letters=None,
                     progress=None):
    """Non-digit drawings (label 255: no class), ``per_kind`` of each kind (three times as many letters)."""
    rng = np.random.default_rng(seed)
    letters = letter_sources() if letters is None else letters
    out = _Collector()
    for kind in kinds:
        if kind == "letter" and not letters:
            continue
        for _ in range(per_kind * (3 if kind == "letter" else 1)):
            out.add(non_digit(kind, rng, letters), 255, kind)
        if progress:
            progress(f"non-digits: {kind}")
    return out.result(rng)


def _files(part: str, folder: Path) -> tuple[Path, Path]:
    prefix = PARTS[part]
    return folder / f"{prefix}images-idx3-ubyte.gz", folder / f"{prefix}labels-idx1-ubyte.gz"


def load_part(part: str, folder: Path = EXTRA_DIR) -> tuple[np.ndarray, np.ndarray]:
    """One built part: images (N, 28, 28) uint8 and labels (N,) (255 for non-digits)."""
    from digitkit.data.idx import read_idx

    images_file, labels_file = _files(part, folder)
    images = read_idx(images_file, 3, (None, 28, 28))
    labels = read_idx(labels_file, 1)
    valid = labels == 255 if part == "non-digits" else labels <= 9
    if len(images) != len(labels) or not valid.all():
        raise DigitkitError(f"{folder}: the {part} training set is inconsistent; rebuild it "
                            "(python -m digitkit.data.handwriting)")
    return images, labels


def load_extra_digits(parts=("synthetic", "pendigits"), folder: Path = EXTRA_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The built digits of other writers: images (N, 28, 28) uint8 and digit labels (N,)."""
    loaded = [load_part(part, folder) for part in parts]
    return np.concatenate([i for i, _ in loaded]), np.concatenate([l for _, l in loaded])


def load_non_digits(folder: Path = EXTRA_DIR) -> np.ndarray:
    """The built non-digit drawings: images (N, 28, 28) uint8."""
    return load_part("non-digits", folder)[0]


def main(argv: list[str] | None = None) -> None:
    """``python -m digitkit.data.handwriting [OUT_DIR] [--only PART]``: rebuild the shipped training set."""
    import argparse

    from digitkit.data.idx import write_idx

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", nargs="?", default=str(EXTRA_DIR))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=list(PARTS), action="append", help="rebuild only this part (repeatable)")
    args = parser.parse_args(argv)
    parts = args.only or list(PARTS)
    if {"synthetic", "non-digits"} & set(parts):
        missing = [name for name in fonts.TRAINING_FONTS if not (fonts.FONT_ROOT / name).is_file()]
        if missing or not (hershey.HERSHEY_ROOT / "futural.jhf").is_file():
            raise SystemExit(f"missing fonts (apt-get install the packages listed in {EXTRA_DIR / 'README.md'}): "
                             f"{missing or 'hershey-fonts-data'}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary_file = out / "sources.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    builders = {"synthetic": build_synthetic, "pendigits": build_pendigits, "non-digits": build_non_digits,
                "pendigits-calibration": lambda **kw: build_pendigits(calibration=True, **kw)}
    for part in parts:
        images, labels, sources = builders[part](seed=args.seed, progress=print)
        images_file, labels_file = _files(part, out)
        write_idx(images_file, images)
        write_idx(labels_file, labels)
        summary[part] = {"seed": args.seed, "count": len(labels),
                         "by_kind": Counter(s.split(":")[0] for s in sources),
                         "per_label": {int(k): v for k, v in sorted(Counter(labels.tolist()).items())},
                         "sources": sorted(set(sources))}
        print(f"wrote {len(labels)} {part} images to {out}")
    summary_file.write_text(json.dumps(summary, indent=1) + "\n")
