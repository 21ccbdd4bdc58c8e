"""Stand-ins for handwriting from people MNIST never saw, read with `digitkit predict --json` exactly
as a user would, in three parts reported apart:

- real: the pen digits of the six pendigits writers that take no part in training or calibration
  (1,498 digits, digitkit.data.handwriting.pendigits.BENCHMARK_WRITERS), drawn as drawing apps
  save drawings. The only figures here that come from real people.
- generated: digits no training source shares (handwriting fonts digitkit does not train on:
  fonts-bwht Mentor and Organize, fonts-dkg-handwriting, SteveHand, Yusei Magic; Hershey designs
  Times roman, Times italic bold, Roman triplex; digit skeletons written for this benchmark, in the
  styles MNIST lacks), drawn as the web page and drawing apps save them, or scanned: ink on paper
  (tint, uneven light, noise, blur, rotation, sometimes a form's printed box, faint or dark), PNG or
  JPEG. Made by digitkit's own generators, so it flatters a model trained on them.
- non-digits: drawings of every kind in digitkit.data.handwriting.shapes (those training never sees
  marked "never trained"), taps, and letters from the benchmark's fonts: how often each is answered
  as a sure digit, and as "not a digit".
- MNIST scans: MNIST's first 1,000 test digits (writers training never saw) binarised at 16-32
  px and scaled back up jagged, once with their aspect kept and once stretched to fill a square box,
  as some form processors deliver them (the check of round 3's issue: a stretched 1 is a fat bar),
  that with paper round it and in a box as tight as the digit, dark on light and light on dark.
- out of distribution, as the field measures it: AUROC and the share of non-digits accepted when 95%
  of real digits are (FPR at 95% TPR), with the top probability as the score, on the non-digit
  drawings, the letters and Fashion-MNIST's test images; ``--baseline`` adds the same figures for a
  model trained on MNIST alone (plain max-probability, the published baseline).

The real writers come twice: drawn, and scan-style (each digit binarised at 16-32 px, some
stretched to fill their box, scaled back up jagged, with specks: see ``scanned_form``); the
scan-style ones are also read by how each was scanned (pen, height, box).

    python benchmarks/real_handwriting.py runs/first
    python benchmarks/real_handwriting.py runs/first/MNISTClassifier.onnx --per-glyph 10 --json out.json
    python benchmarks/real_handwriting.py runs/default --baseline runs/tutorial

Prints, per part, accuracy (by rendering, source and class), the most common confusions, calibration
(ECE), how confident right and wrong answers are, how many wrong answers are flagged "not sure" and
right ones too, and how many digits are answered "not a digit"; for the non-digits, per kind.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from scipy import ndimage
from scipy.stats import rankdata

from digitkit import DigitkitError
from digitkit.data import handwriting as hw
from digitkit.data import load_dataset
from digitkit.report import expected_calibration_error
from digitkit.train.calibrate import apply_temperature
from digitkit.classifier import NOT_A_CLASS_BELOW, SURE_ABOVE
from digitkit.data.handwriting import pendigits, shapes
from digitkit.data.normalize import ink_map

FONTS = ("opentype/bwht/BecauseWeMentor-Regular.otf", "opentype/bwht/BecauseWeOrganize-Regular.otf",
         "truetype/fifthhorseman/dkg.ttf", "truetype/fifthhorseman/dkgBd.ttf", "truetype/fifthhorseman/dkgIt.ttf",
         "truetype/fifthhorseman/dkgBI.ttf", "truetype/sjfonts/SteveHand.ttf",
         "truetype/yusei-magic/YuseiMagic-Regular.ttf")
HERSHEY = ("timesr", "timesib", "rowmant")
TEMPERATURE_SCALES = (0.6, 0.8, 1.0, 1.25)
SCAN_HEIGHTS = {"16-20 px": 20, "21-26 px": 26, "27-32 px": 32}  # the digit's height in a scan, in bands
SCAN_DETAILS = ("pen", "height", "box")  # how each scan-style image was made (scanned_form)
assert not set(FONTS) & set(hw.TRAINING_FONTS) and not set(HERSHEY) & set(hw.TRAINING_HERSHEY)

# Skeletons on a 10 x 10 grid (x right, y down), one list of points per pen stroke, straight segments
# with rounded turns where a point is listed twice. Written for this benchmark alone.
G = 10.0
BENCH_STYLES = {
    "0": [[[(5, 0.5), (2.5, 1.5), (1.5, 5), (2.5, 8.7), (5, 9.6), (7.5, 8.6), (8.4, 5), (7.4, 1.6), (5, 0.5), (4, 1)]],
          [[(6, 1), (4, 0.6), (2.4, 3), (2.2, 7), (4, 9.5), (6.2, 8.8), (7.6, 5.5), (7.2, 2), (5.4, 0.6)]]],
    "1": [[[(3, 2.4), (5.6, 0.3), (5.6, 9.7)]],
          [[(2.5, 2.8), (5.4, 0.4), (5.4, 9.6)], [(3, 9.6), (7.8, 9.6)]],
          [[(1.5, 4.2), (5.8, 0.3), (5.6, 9.7)]],
          [[(2, 3.5), (6, 0.3), (5.2, 9.7)], [(3.2, 9.7), (7.2, 9.7)]],
          [[(5, 0.3), (5, 9.7)]]],
    "2": [[[(1.8, 2.8), (3.5, 0.6), (6.2, 0.5), (7.7, 2.4), (7, 4.6), (1.8, 9.5), (8.4, 9.4)]],
          [[(2, 2.5), (4, 0.4), (6.8, 0.8), (7.4, 3.2), (5, 6.4), (2.2, 8.6), (1.6, 9.6), (2.8, 9.8), (3.6, 8.6),
            (5, 8.8), (8.6, 9.6)]],
          [[(1.5, 1.2), (7.8, 0.8), (7.8, 2.8), (1.6, 9.5), (8.5, 9.5)]]],
    "3": [[[(2, 1.2), (6.5, 0.4), (7.6, 2.4), (4.2, 4.7), (7.8, 6.4), (7.4, 9), (4.6, 9.8), (1.6, 8.8)]],
          [[(1.8, 0.6), (7.6, 0.6), (4.2, 4.2), (7.4, 5.6), (7.6, 8.6), (4.6, 9.8), (1.8, 8.6)]]],
    "4": [[[(6.8, 0.4), (1.2, 6.8), (8.8, 6.8)], [(6.8, 0.4), (6.8, 9.7)]],
          [[(2.6, 0.4), (2, 5.6), (8.6, 5.6)], [(6.8, 0.6), (6.8, 9.7)]],
          [[(2.6, 0.4), (2.2, 5.8), (7, 5.8), (7.2, 0.6), (6.8, 9.7)]],
          [[(3, 0.4), (1.6, 6), (8.5, 5.6)], [(7.4, 0.5), (5.8, 9.7)]]],
    "5": [[[(7.4, 0.6), (3, 0.6), (2.6, 4.6), (5.6, 3.8), (7.8, 5.8), (7.2, 8.8), (4.2, 9.8), (1.8, 8.6)]],
          [[(3, 0.6), (2.6, 4.4), (6, 4), (7.8, 6.6), (6, 9.5), (2, 9)], [(3, 0.6), (7.8, 0.4)]]],
    "6": [[[(7, 0.6), (4.2, 1.4), (2.4, 4.8), (2.4, 8.2), (4.8, 9.8), (7.2, 8.4), (7, 6), (4.6, 5.4), (2.4, 6.8)]],
          [[(6.4, 0.3), (2.6, 5.8), (2.8, 8.6), (5, 9.8), (7.4, 8.2), (6.4, 5.8), (3.6, 5.8), (2.6, 7)]]],
    "7": [[[(1.4, 0.8), (8.4, 0.8), (4, 9.7)]],
          [[(1.4, 0.8), (8.4, 0.8), (4.2, 9.7)], [(3.6, 5.2), (8, 5)]],
          [[(1.4, 2.4), (1.5, 0.8), (8.4, 0.8), (4.4, 9.7)], [(3.8, 5.4), (7.6, 5.4)]],
          [[(1.6, 1), (8.4, 0.8), (6, 4.6), (5, 9.7)], [(3.6, 4.8), (8.2, 4.6)]]],
    "8": [[[(7, 1.6), (5, 0.4), (2.8, 1.6), (3.2, 3.6), (7, 6.2), (7.4, 8.6), (5, 9.8), (2.6, 8.6), (3, 6.2), (7, 3.6),
            (7.2, 1.6), (5.2, 0.4)]],
          [[(5, 0.4), (3, 1.6), (3.4, 4), (5, 4.7), (6.8, 4), (7, 1.6), (5, 0.4)],
           [(5, 4.7), (2.4, 6.2), (2.6, 8.8), (5, 9.8), (7.4, 8.8), (7.6, 6.2), (5, 4.7)]]],
    "9": [[[(7.2, 3), (6.4, 0.8), (4.4, 0.4), (2.6, 1.8), (2.8, 4.2), (4.8, 5), (7.2, 3.4), (7.2, 9.7)]],
          [[(6.4, 2), (5.4, 0.4), (3.6, 0.6), (3.2, 2.4), (4.6, 3.4), (6.4, 2.2), (6.2, 9.7)]],
          [[(7.4, 3), (6.6, 0.6), (4, 0.5), (2.4, 2.6), (4, 5), (7.2, 3.6), (7, 7.6), (5, 9.7), (2.6, 9.2)]],
          [[(7.6, 2.6), (6.4, 0.4), (3.8, 0.6), (3, 2.8), (5, 4.6), (7.6, 2.8), (4.6, 9.7)]]],
}


def bench_strokes(style) -> list[np.ndarray]:
    return [hw.smooth_curve(np.asarray(stroke, np.float64) / G, steps=6) for stroke in style]


def drawn(strokes: list[np.ndarray], rng: np.random.Generator) -> Image.Image:
    """A drawing as the web page uploads it, or as a drawing app saves it, by a random writer."""
    return hw.drawing(strokes, rng, hw.Writer.draw(rng))


def scanned(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Ink (0..1) as a scan of a form: paper, ink colour, light, noise, blur, maybe a box."""
    h, w = ink.shape
    pad = int(max(h, w) * rng.uniform(0.08, 0.5))
    ink = np.pad(ink, pad)
    if rng.random() < 0.4:  # the printed box of a form around the digit: faint, or as dark as the ink
        box = np.zeros_like(ink)
        m = max(2, pad // 3)
        box[m, m:-m] = box[-m, m:-m] = box[m:-m, m] = box[m:-m, -m] = 1
        box = np.maximum(box, np.roll(box, 1, 0))
        ink = np.maximum(ink, box * (rng.uniform(0.1, 0.22) if rng.random() < 0.5 else rng.uniform(0.6, 1.0)))
    paper = rng.uniform(190, 255)
    ink_level = rng.uniform(0, 90)
    tint = rng.uniform(0.85, 1.15, 3)
    light = np.linspace(-1, 1, ink.shape[1])[None, :] * rng.uniform(0, 20)
    grey = paper + (ink_level - paper) * ink + light + rng.normal(0, rng.uniform(0, 8), ink.shape)
    image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    image = image.rotate(rng.normal(0, 3), resample=Image.Resampling.BILINEAR, fillcolor=int(paper))
    if rng.random() < 0.5:
        rgb = np.clip(np.asarray(image, np.float32)[..., None] * tint, 0, 255).astype(np.uint8)
        image = Image.fromarray(rgb, "RGB")
    return image


def _font_ink(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ink = hw.distort_glyph(glyph, rng)
    scale = rng.uniform(30, 160) / glyph.shape[0]
    image = Image.fromarray((np.clip(ink, 0, 1) * 255).astype(np.uint8))
    image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.Resampling.LANCZOS)
    return np.asarray(image, np.float32) / 255


class ImageSaver:
    """Saves images into the benchmark folder and remembers the truth of each."""

    def __init__(self, folder: Path, rng: np.random.Generator):
        self.folder, self.rng, self.truth = folder, rng, {}

    def save(self, image: Image.Image, label: str | None, source: str, render: str, part: str, **more: str) -> None:
        name = f"{len(self.truth):05d}"
        jpeg = image.mode != "RGBA" and render == "scanned" and self.rng.random() < 0.4
        buffer = io.BytesIO()
        if jpeg:
            image.convert("RGB").save(buffer, "JPEG", quality=int(self.rng.integers(60, 95)))
        else:
            image.save(buffer, "PNG")
        name += ".jpg" if jpeg else ".png"
        (self.folder / name).write_bytes(buffer.getvalue())
        self.truth[name] = {"label": label, "source": source, "render": render, "part": part, **more}


def build_generated(out: ImageSaver, per_glyph: int) -> None:
    """The generated stand-in: fonts, Hershey designs and skeletons training never used."""
    rng = out.rng

    def save(image, label, source, render):
        out.save(image, label, source, render, "generated")

    for font in FONTS:
        path = hw.FONT_ROOT / font
        if not path.is_file():
            raise SystemExit(f"missing benchmark font {path} (apt-get install the package; see docs/benchmarks.md)")
        for digit in hw.DIGITS:
            glyph = hw.font_glyph(path, digit)
            for k in range(per_glyph):
                ink = _font_ink(glyph, rng)
                if k % 3 == 2:  # a third drawn in an app (filled strokes), the rest scanned
                    canvas = np.pad(ink, int(max(ink.shape) * rng.uniform(0.1, 0.6)))
                    save(hw.canvas_image(canvas, rng), digit, f"font:{path.stem}", "drawn")
                else:
                    save(scanned(ink, rng), digit, f"font:{path.stem}", "scanned")
    for name in HERSHEY:
        glyphs = hw.hershey_glyphs(hw.HERSHEY_ROOT / f"{name}.jhf")
        for digit in hw.DIGITS:
            strokes = hw.to_unit_box(glyphs[digit])
            for _ in range(per_glyph):
                save(drawn(strokes, rng), digit, f"hershey:{name}", "drawn")
    for digit, styles in BENCH_STYLES.items():
        for i, style in enumerate(styles):
            strokes = bench_strokes(style)
            for k in range(per_glyph * 2):
                if k % 4 == 3:  # a quarter written with a ballpoint and scanned
                    writer = hw.Writer.draw(rng, pen=(0.03, 0.09))
                    save(scanned(hw.pen_digit(strokes, rng, writer), rng), digit, f"style:{digit}{chr(97 + i)}", "scanned")
                else:
                    save(drawn(strokes, rng), digit, f"style:{digit}{chr(97 + i)}", "drawn")


def scanned_form(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, dict[str, str]]:
    """A digit as a scanned form's processor delivers it: binarised with the digit 16 to 32 px tall,
    a thicker or thinner pen now and then, a third stretched to fill its box both ways (a 1 becomes
    a fat bar), scaled back up by a whole factor (jagged edges), with a few scanner specks. Written
    here with Pillow and SciPy, apart from training's own scan-style renderer (train.augment).
    Also returns how it was scanned (``SCAN_DETAILS``), so the summary can tell where scans fail."""
    ink, _ = ink_map(image)  # a drawing's ink in either polarity, or a transparent canvas's alpha
    ink = ink[_box(ink > 0.2)]
    tall = int(rng.integers(16, 33))
    stretched = rng.random() < 1 / 3
    wide = tall if stretched else max(2, round(ink.shape[1] * tall / ink.shape[0]))
    small = np.asarray(Image.fromarray(ink, "F").resize((wide, tall), Image.Resampling.BILINEAR, reducing_gap=2.0))
    binary = small > rng.uniform(0.15, 0.45) * small.max()
    pen, drawn_with = rng.random(), "as written"
    if pen < 0.2:
        binary, drawn_with = ndimage.binary_dilation(binary), "thicker"
    elif pen < 0.35 and binary.sum() > 60:
        binary = ndimage.binary_erosion(binary) | (binary & ~ndimage.binary_erosion(binary, iterations=2) & (rng.random(binary.shape) < 0.3))
        drawn_with = "thinner, broken"
    margin = int(rng.integers(2, 8))
    binary = np.pad(binary, margin)
    binary |= rng.random(binary.shape) < 0.002  # scanner specks
    up = int(rng.integers(1, 4))
    grey = np.where(np.kron(binary, np.ones((up, up), bool)), 25, 240).astype(np.uint8)
    height = next(band for band, top in SCAN_HEIGHTS.items() if tall <= top)
    return Image.fromarray(grey, "L"), {"pen": drawn_with, "height": height,
                                        "box": "stretched" if stretched else "aspect kept"}


def build_real(out: ImageSaver, limit: int | None = None) -> None:
    """The real-writer stand-in: the held-out pendigits writers (never trained on), drawn as apps
    save them, and each digit again as a scanned form delivers it."""
    _, _, held_out = pendigits.split_by_writer(pendigits.read_pendigits())
    for digit in held_out[:limit]:
        drawing = pendigits.render(digit, out.rng)
        out.save(drawing, str(digit.label), f"writer{digit.writer + 1}", "drawn", "real")
        scan, details = scanned_form(drawing, out.rng)
        out.save(scan, str(digit.label), f"writer{digit.writer + 1}", "scan-style", "real", **details)


def build_non_digits(out: ImageSaver, per_kind: int) -> None:
    """Drawings that are not digits: every shape kind (those training never saw included), dots, and
    letters from the benchmark's own fonts and Hershey designs."""
    letters = hw.letter_sources(FONTS, HERSHEY)
    kinds = (*shapes.SHAPES, "dot", "letter")
    for kind in kinds:
        for _ in range(per_kind * (3 if kind == "letter" else 1)):
            image = hw.non_digit(kind, out.rng, letters)
            if isinstance(image, np.ndarray):  # a font's glyph: as a drawing or a scan
                image = hw.canvas_image(np.pad(image, 12), out.rng) if out.rng.random() < 0.5 else scanned(image, out.rng)
            held_out = kind in shapes.HELD_OUT_KINDS or kind == "letter"
            out.save(image, None, kind + (" (never trained)" if held_out else ""), "drawn", "non-digits")


def build_fashion(out: ImageSaver, count: int) -> None:
    """Fashion-MNIST's test images (Debian's dataset-fashion-mnist): clothes, not digits."""
    try:
        images = load_dataset("fashion-mnist").x_test
    except DigitkitError as err:
        raise SystemExit(f"Fashion-MNIST is needed for the out-of-distribution figures: {err}") from None
    for index in out.rng.choice(len(images), count, replace=False):
        out.save(Image.fromarray(images[index]), None, "fashion-mnist", "drawn", "fashion")


def mnist_scan(image: np.ndarray, rng: np.random.Generator, stretched: bool) -> Image.Image:
    """An MNIST digit as a scanned form's processor delivers it: binarised with the digit 16 to 32 px
    tall, its aspect kept, or stretched to fill a square box (a 1 becomes a fat bar), scaled back up
    jagged. The check of round 3's issue, on writers training never saw (MNIST's test writers)."""
    return _jagged(*_scan_binary(image, rng, stretched), margin=3)


def _scan_binary(image: np.ndarray, rng: np.random.Generator, stretched: bool) -> tuple[np.ndarray, int]:
    ink = image.astype(np.float32) / 255
    ink = ink[_box(ink > 0.2)]
    tall = int(rng.integers(16, 33))
    wide = tall if stretched else max(2, round(ink.shape[1] * tall / ink.shape[0]))
    small = np.asarray(Image.fromarray(ink, "F").resize((wide, tall), Image.Resampling.BILINEAR))
    return small > rng.uniform(0.3, 0.6) * small.max(), tall


def _jagged(binary: np.ndarray, tall: int, margin: int) -> Image.Image:
    """The binary digit with ``margin`` px of paper round it, scaled up by whole pixels."""
    up = 64 // tall
    padded = np.pad(binary, margin)
    return Image.fromarray(np.where(np.kron(padded, np.ones((up, up), bool)), 20, 240).astype(np.uint8), "L")


def _box(mask: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of the mask's bounding box."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def build_mnist_scans(out: ImageSaver, count: int) -> None:
    """MNIST's first ``count`` test digits as scanned forms deliver them: aspect kept, stretched, and
    the same stretched digit in a box as tight as the digit (no paper round it: over half of many
    such images is ink, a fat 1's most of all), dark on light and, as a dataset's bitmaps often
    are, light on dark; and, as some digit collections keep them, in grey (not binarised), stretched
    to a 16x16 box, light on dark, and that box binarised, dark on light, at 16 px (not scaled up)."""
    data = load_dataset("mnist")
    for image, label in zip(data.x_test[:count], data.y_test[:count]):
        out.save(mnist_scan(image, out.rng, False), str(label), "mnist-test", "aspect kept", "mnist-scans")
        binary, tall = _scan_binary(image, out.rng, True)
        out.save(_jagged(binary, tall, margin=3), str(label), "mnist-test", "stretched", "mnist-scans")
        tight = _jagged(binary[_box(binary)], tall, margin=0)
        out.save(tight, str(label), "mnist-test", "stretched, tight box", "mnist-scans")
        out.save(ImageOps.invert(tight), str(label), "mnist-test", "tight box, light on dark", "mnist-scans")
        grey = _grey_16(image)
        out.save(grey, str(label), "mnist-test", "grey 16 px, light on dark", "mnist-scans")
        threshold = 0.45 * grey.getextrema()[1]
        bitmap = grey.point(lambda v: 255 if v > threshold else 0)
        out.save(ImageOps.invert(bitmap), str(label), "mnist-test", "16 px bitmap, as delivered", "mnist-scans")


def _grey_16(image: np.ndarray) -> Image.Image:
    """The digit's box stretched to 16x16 in grey, light ink on dark (no randomness: the other
    renders draw the same numbers as before)."""
    ink = Image.fromarray(image[_box(image > 0.2 * 255)])
    return ink.resize((16, 16), Image.Resampling.BILINEAR)


def predict_json(model: str, folder: Path) -> dict[str, dict]:
    """Run the real CLI, as the held-out set is: `digitkit predict MODEL DIR --json`."""
    out = subprocess.run([sys.executable, "-m", "digitkit", "predict", model, str(folder), "--json"],
                         capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if not rows:
        raise SystemExit(f"digitkit predict failed:\n{out.stderr[-3000:]}")
    return {Path(r["file"]).name: r for r in rows}


def summarise_digits(truth: dict[str, dict], rows: dict[str, dict]) -> dict:
    names = sorted(truth)
    labels = [str(d) for d in range(10)]
    probs = np.array([[rows[n]["probabilities"][c] if "probabilities" in rows.get(n, {}) else 0.0 for c in labels]
                      for n in names])
    y = np.array([int(truth[n]["label"]) for n in names])
    pred = probs.argmax(1)
    confidence = probs.max(1)
    right = pred == y

    def accuracy(mask) -> float:
        return float(right[mask].mean()) if mask.any() else float("nan")

    def group(key) -> dict:
        values = np.array([truth[n][key] if key != "kind" else truth[n]["source"].split(":")[0] for n in names])
        return {v: {"n": int((values == v).sum()), "accuracy": accuracy(values == v)} for v in sorted(set(values))}

    def honesty(key, scale: float = 1.0) -> dict:
        """Per value of ``key``: right answers flagged "not sure", and how often a "sure" answer is
        wrong; with ``scale``, as if the model's temperature were that many times what it is."""
        values = np.array([truth[n][key] for n in names])
        sure = (confidence if scale == 1.0 else apply_temperature(probs, scale).max(1)) >= SURE_ABOVE
        return {v: {"right_flagged_not_sure": float((~sure[right & (values == v)]).mean()),
                    "sure_wrong": float((~right[sure & (values == v)]).mean()) if (sure & (values == v)).any() else 0.0}
                for v in sorted(set(values))}

    def scans_by(key) -> dict:
        values = np.array([truth[n].get(key, "") for n in names])
        def flagged(mask) -> float:
            return float((confidence[mask] < SURE_ABOVE).mean()) if mask.any() else float("nan")
        return {v: {"n": int((values == v).sum()), "accuracy": accuracy(values == v),
                    "right_flagged_not_sure": flagged(right & (values == v))} for v in sorted(set(values) - {""})}

    renders = np.array([truth[n]["render"] for n in names])
    confusions = Counter(f"{t}→{p}" for t, p in zip(y[~right], pred[~right]))
    return {
        "images": len(names),
        "failed": sum("error" in rows.get(n, {"error": 1}) for n in names),
        "accuracy": accuracy(np.ones_like(right)),
        "by_render": group("render"),
        "honesty_by_render": honesty("render"),
        # One temperature serves every kind: what a cooler or warmer one would trade, kind by kind.
        "temperature_trade": {str(k): honesty("render", k) for k in TEMPERATURE_SCALES},
        "by_kind": group("kind"),
        # Scan-style images by how they were scanned: which pens and sizes lose the digit.
        **{f"scans_by_{key}": scans_by(key) for key in SCAN_DETAILS if any(key in truth[n] for n in names)},
        "by_source": group("source"),
        "per_class": {d: accuracy(y == d) for d in range(10)},
        "per_class_by_render": {v: {str(d): accuracy((y == d) & (renders == v)) for d in range(10)} for v in sorted(set(renders))},
        "top_confusions": confusions.most_common(10),
        "expected_calibration_error": expected_calibration_error(probs, y),
        "median_confidence_right": float(np.median(confidence[right])) if right.any() else None,
        "median_confidence_wrong": float(np.median(confidence[~right])) if (~right).any() else None,
        "right_at_least_0.97": float((confidence[right] >= 0.97).mean()) if right.any() else None,
        "wrong_flagged_not_sure": float((confidence[~right] < SURE_ABOVE).mean()) if (~right).any() else None,
        "right_flagged_not_sure": float((confidence[right] < SURE_ABOVE).mean()) if right.any() else None,
        "digits_rejected_as_not_a_digit": float((confidence < NOT_A_CLASS_BELOW).mean()),
    }


def summarise_non_digits(truth: dict[str, dict], rows: dict[str, dict]) -> dict:
    names = sorted(truth)
    confidence = np.array([rows[n]["confidence"] if "confidence" in rows.get(n, {}) else 0.0 for n in names])
    kinds = np.array([truth[n]["source"] for n in names])

    def rates(mask) -> dict:
        return {"n": int(mask.sum()), "sure_digit": float((confidence[mask] >= SURE_ABOVE).mean()),
                "not_a_digit": float((confidence[mask] < NOT_A_CLASS_BELOW).mean())}

    return {"images": len(names), **rates(np.ones(len(names), bool)),
            "by_kind": {k: rates(kinds == k) for k in sorted(set(kinds))}}


def auroc_and_fpr95(digits: np.ndarray, others: np.ndarray) -> dict:
    """The field's two figures for telling digits from non-digits by a score (higher: more of a
    digit): the area under the ROC curve (the chance that a random digit scores above a random
    non-digit, ties half), and the share of non-digits accepted at the threshold that accepts 95%
    of the digits (FPR at 95% TPR)."""
    ranks = rankdata(np.concatenate([digits, others]))
    auroc = (ranks[: len(digits)].sum() - len(digits) * (len(digits) + 1) / 2) / (len(digits) * len(others))
    threshold = np.quantile(digits, 0.05)
    return {"n": int(len(others)), "auroc": float(auroc), "fpr_at_95_tpr": float((others >= threshold).mean())}


def out_of_distribution(truth: dict[str, dict], rows: dict[str, dict]) -> dict:
    """AUROC and FPR at 95% TPR of the top probability, real digits (drawn and scan-style) against
    each set of non-digits: drawings, letters, Fashion-MNIST."""
    def confidence(names):
        return np.array([rows[n]["confidence"] if "confidence" in rows.get(n, {}) else 0.0 for n in names])

    digits = confidence([n for n, t in truth.items() if t["part"] == "real"])
    sets = {"non-digit drawings": [n for n, t in truth.items() if t["part"] == "non-digits" and not t["source"].startswith("letter")],
            "letters": [n for n, t in truth.items() if t["part"] == "non-digits" and t["source"].startswith("letter")],
            "Fashion-MNIST": [n for n, t in truth.items() if t["part"] == "fashion"]}
    return {name: auroc_and_fpr95(digits, confidence(names)) for name, names in sets.items() if names}


def summarise(truth: dict[str, dict], rows: dict[str, dict]) -> dict:
    parts = {part: {n: t for n, t in truth.items() if t["part"] == part}
             for part in ("real", "generated", "non-digits", "mnist-scans")}
    result = {"sure_above": SURE_ABOVE, "not_a_digit_below": NOT_A_CLASS_BELOW}
    for part in ("real", "generated", "mnist-scans"):
        if parts[part]:
            result[part] = summarise_digits(parts[part], rows)
    if parts["non-digits"]:
        result["non-digits"] = summarise_non_digits(parts["non-digits"], rows)
    result["out_of_distribution"] = out_of_distribution(truth, rows)
    return result


def _line(name: str, r: dict) -> str:
    renders = ", ".join(f"{k} {v['accuracy']:.2%}" for k, v in r["by_render"].items())
    return (f"{name}: {r['accuracy']:.2%} of {r['images']} ({renders}); ECE {r['expected_calibration_error']:.3f}; "
            f"wrong flagged not sure {r['wrong_flagged_not_sure'] or 0:.1%}, right flagged {r['right_flagged_not_sure']:.1%}, "
            f"rejected as not a digit {r['digits_rejected_as_not_a_digit']:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="run folder, .keras, .onnx, .mlpackage or .mlmodel")
    parser.add_argument("--per-glyph", type=int, default=20, help="generated images per font glyph and per style (default 20)")
    parser.add_argument("--per-kind", type=int, default=40, help="non-digit drawings per kind (default 40; letters 3x)")
    parser.add_argument("--real-limit", type=int, help="read only the first N held-out real digits (default all 1,498)")
    parser.add_argument("--fashion", type=int, default=1000, help="Fashion-MNIST test images among the non-digits (default 1000)")
    parser.add_argument("--baseline", help="a second model whose plain top probability is the out-of-distribution "
                                           "baseline row (a model trained on MNIST alone: --preset tutorial)")
    parser.add_argument("--mnist-scans", type=int, default=1000,
                        help="MNIST test digits read as scanned forms: aspect kept, stretched, stretched in a "
                             "tight box dark on light and light on dark, grey in a 16x16 box light on dark, and "
                             "that box as a 16 px bitmap (default 1000; 0: none)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="keep the images (and truth.json) in this folder")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        out = ImageSaver(folder, np.random.default_rng(args.seed))
        build_real(out, args.real_limit)
        build_generated(out, args.per_glyph)
        build_non_digits(out, args.per_kind)
        build_fashion(out, args.fashion)
        build_mnist_scans(out, args.mnist_scans)
        (folder / "truth.json").write_text(json.dumps(out.truth))
        result = {"model": args.model, **summarise(out.truth, predict_json(args.model, folder))}
        if args.baseline:
            baseline = summarise(out.truth, predict_json(args.baseline, folder))
            result["baseline"] = {"model": args.baseline, "real": baseline["real"]["accuracy"],
                                  "out_of_distribution": baseline["out_of_distribution"]}
    print(json.dumps(result, indent=1))
    print()
    print(_line("real writers (held-out pendigits)", result["real"]))
    print(_line("generated stand-in", result["generated"]))
    if "mnist-scans" in result:
        scans = result["mnist-scans"]
        print(_line("MNIST test digits as scanned forms", scans))
        for render, h in scans["honesty_by_render"].items():
            print(f"MNIST scans, {render}: 1s {scans['per_class_by_render'][render]['1']:.1%}, right answers flagged "
                  f"not sure {h['right_flagged_not_sure']:.1%}, a sure answer wrong {h['sure_wrong']:.2%}")
    nd = result["non-digits"]
    print(f"non-digits: {nd['images']} drawings of {len(nd['by_kind'])} kinds; answered as a sure digit "
          f"{nd['sure_digit']:.1%}, as not a digit {nd['not_a_digit']:.1%}")
    for part in ("real", "generated"):
        print(f"per class ({part}): " + "  ".join(f"{d}: {a:.1%}" for d, a in result[part]["per_class"].items()))
    for render, h in result["real"]["honesty_by_render"].items():
        print(f"real writers, {render}: right answers flagged not sure {h['right_flagged_not_sure']:.1%}, "
              f"a sure answer wrong {h['sure_wrong']:.2%}")
    print("real writers, scan-style, by how they were scanned: " + "; ".join(
        ", ".join(f"{v} {r['accuracy']:.2%} of {r['n']} (right flagged {r['right_flagged_not_sure']:.1%})"
                  for v, r in result["real"][f"scans_by_{key}"].items())
        for key in SCAN_DETAILS if f"scans_by_{key}" in result["real"]))
    print("\nOne temperature for every kind: with the model's temperature times k (real writers):")
    print("| k | " + " | ".join(f"{r}: right flagged / sure wrong" for r in result["real"]["honesty_by_render"]) + " |")
    print("| --- |" + " --- |" * len(result["real"]["honesty_by_render"]))
    for k, per_render in result["real"]["temperature_trade"].items():
        print(f"| {k} | " + " | ".join(f"{h['right_flagged_not_sure']:.1%} / {h['sure_wrong']:.2%}" for h in per_render.values()) + " |")
    print("\nNot a digit (top probability as the score; real digits, drawn and scan-style, against each set):")
    print("| model | set | AUROC | FPR at 95% TPR |\n| --- | --- | --- | --- |")
    for who in ([result] + ([result["baseline"]] if "baseline" in result else [])):
        for name, r in who["out_of_distribution"].items():
            print(f"| {who['model']} | {name} ({r['n']}) | {r['auroc']:.4f} | {r['fpr_at_95_tpr']:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
