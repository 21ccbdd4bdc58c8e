"""Reading whole numbers: numbers of 2-8 digits written by people training never saw.

Each number is written by one of digitkit's six held-out pen writers (data.handwriting.pendigits:
BENCHMARK_WRITERS, never trained on or tuned with), digit by digit in that writer's own hand,
spaced as people space digits (apart, close, touching, slightly overlapping), with one pen per
number (from a fine pen to a marker). Three kinds, and four more on request, all SYNTHESIZED from
those pen digits (no real photos or scans are in this repository):

- drawn: dark ink on a white canvas, as the drawing page saves it;
- photo: the same on paper photographed with a phone: a 3x larger image, paper texture, light
  falling off across the page and a soft shadow, blue or black ink, ruled lines on some, a
  rotation of up to 8 degrees, blur, sensor noise and JPEG compression;
- scan: the same as a form processor delivers it: binarised at 20-30 px a digit (a fine pen's line
  spread over at least half a scan pixel, as a scanner's optics spread it) and scaled back up
  (jagged), with scanner specks;
- page (``--kinds page``, not in the issue's targets): the sheet photographed from further away,
  the number in its middle and the desk around it (a 3-megapixel JPEG);
- form, form-scan and form-photo (``--kinds form form-scan form-photo``): the number written into
  a form's field, a digit a box, with its printed lines (a line under it, a box round it, a comb of
  boxes, or a comb's ticks), drawn as the drawing page saves it, or scanned or photographed as above.
- underlined (``--kinds underlined``): the drawing with a line drawn by hand under the number.

For each kind: whole-number accuracy (and on 2-6 digits, the target's range), digit accuracy (1 -
edit distance / length), segmentation errors (digits missed or extra, as a share of digits), the
share answered "sure", how often a sure number is wrong, and the time per number. The numbers are
written without a decimal point: a speck read as one makes the number wrong and counts as an extra
piece.

    python benchmarks/read_numbers.py runs/first               # 200 numbers of each kind
    python benchmarks/read_numbers.py runs/first --count 50 --save-examples examples/
    python benchmarks/read_numbers.py runs/first --writers training    # what the reader was tuned on
    python benchmarks/read_numbers.py runs/first --kinds page --count 50  # a sheet on a desk
    python benchmarks/read_numbers.py runs/first --kinds form form-scan     # written into a form's boxes
    python benchmarks/read_numbers.py runs/first --writers training --sure-digit 0.95  # another bar for "sure"
"""

from __future__ import annotations

import argparse
import io
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from digitkit.data.handwriting import pendigits
from digitkit.data.handwriting.pen import Writer, pen_digit
from digitkit.data.normalize import NormalizeError, load_image
from digitkit.predict import load_model
from digitkit.predict import numbers
from digitkit.predict.numbers import read_number

HEIGHT = 80  # a digit's height in a drawing, px
PEN = (0.04, 0.2)  # a number's pen: from a fine pen on paper to a marker (the page's pen is about 0.15), of a digit's height


def held_out_digits(writers: str = "held-out") -> dict[tuple[int, int], list]:
    """{(writer, digit): that writer's pen digits} of the held-out writers only (or, to tune the
    reader on, of the training writers: never the held-out ones)."""
    training, _, held_out = pendigits.split_by_writer(pendigits.read_pendigits())
    by = {}
    for digit in held_out if writers == "held-out" else training:
        by.setdefault((digit.writer, digit.label), []).append(digit)
    return by


def digit_ink(digit, rng, pen: float) -> np.ndarray:
    """One pen digit in its writer's own shape, drawn with the number's pen (``pen``: its width as
    a share of the digit's height), cropped to its ink."""
    size = rng.uniform(0.85, 1.1)  # people write digits of a number at slightly different sizes
    writer = Writer(slant=rng.normal(0, 0.08), rotation=np.radians(rng.normal(0, 3)), aspect=rng.uniform(0.9, 1.1),
                    jitter=0.0, pen=pen * rng.uniform(0.9, 1.1))  # a pen's line varies a little with pressure
    ink = pen_digit(pendigits.smoothed(digit), rng, writer, HEIGHT * size)
    rows, cols = np.flatnonzero((ink > 0.2).any(1)), np.flatnonzero((ink > 0.2).any(0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def number_inks(by, rng, length: int) -> tuple[list[np.ndarray], list[int]]:
    """The digits of a number of ``length`` random digits, each cropped to its ink, in one held-out
    writer's hand and one pen (from a fine pen to a marker); and the digits."""
    writer = int(rng.choice(sorted({w for w, _ in by})))
    labels = [int(v) for v in rng.integers(0, 10, length)]
    pen = math.exp(rng.uniform(math.log(PEN[0]), math.log(PEN[1])))
    return [digit_ink(by[writer, label][int(rng.integers(len(by[writer, label])))], rng, pen) for label in labels], labels


def drawn_number(by, rng, length: int) -> tuple[np.ndarray, str]:
    """Ink (0..1) of a number in one held-out writer's hand and one pen, and its digits."""
    inks, labels = number_inks(by, rng, length)
    spacing = rng.choice(["apart", "close", "touching"], p=[0.45, 0.35, 0.2])
    gaps = {"apart": (0.2, 0.5), "close": (0.04, 0.2), "touching": (-0.06, 0.0)}[spacing]
    width = sum(i.shape[1] for i in inks) + int(HEIGHT * 0.5 * length) + 2 * HEIGHT
    canvas = np.zeros((HEIGHT * 2, width), np.float32)
    x = HEIGHT // 2
    for ink in inks:
        top = HEIGHT // 2 + int(rng.integers(-6, 7)) + (HEIGHT - ink.shape[0])
        region = canvas[top : top + ink.shape[0], x : x + ink.shape[1]]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
        x += ink.shape[1] + int(rng.uniform(*gaps) * HEIGHT)
    cols = np.flatnonzero(canvas.any(0))
    return canvas[:, : cols[-1] + HEIGHT // 2], "".join(map(str, labels))


FORMS = ("underline", "box", "comb", "ticks")


def form_number(by, rng, length: int) -> tuple[np.ndarray, str]:
    """Ink of a number written into a form's field, one digit a box (its middle, give or take a few
    pixels), in one held-out writer's hand and one pen, with the field's printed lines (0.7-1 times
    as dark as the pen, 1.5-5% of a digit's height thick): a line under it, a box round it, a comb of
    boxes, or a comb's ticks rising from the line; a margin of 0.1-0.8 digit heights around."""
    inks, labels = number_inks(by, rng, length)
    box, margin = int(HEIGHT * rng.uniform(1.2, 1.6)), int(HEIGHT * rng.uniform(0.1, 0.8))
    line = max(2, int(HEIGHT * rng.uniform(0.015, 0.05)))
    canvas = np.zeros((box + 2 * margin, box * length + 2 * margin), np.float32)
    for i, ink in enumerate(inks):
        top = max(0, margin + (box - ink.shape[0]) // 2 + int(rng.integers(-4, 5)))
        left = max(0, margin + i * box + (box - ink.shape[1]) // 2 + int(rng.integers(-4, 5)))
        region = canvas[top : top + ink.shape[0], left : left + ink.shape[1]]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
    lines = np.zeros_like(canvas)
    form = FORMS[int(rng.integers(len(FORMS)))]
    lines[margin + box - line : margin + box, margin : canvas.shape[1] - margin] = 1
    if form in ("box", "comb"):
        lines[margin : margin + line, margin : canvas.shape[1] - margin] = 1
    walls = {"underline": [], "box": [0, length], "comb": range(length + 1), "ticks": range(length + 1)}[form]
    for i in walls:
        x = margin + i * box
        lines[margin + (box - box // 3 if form == "ticks" else 0) : margin + box, max(0, x - line // 2) : x + line - line // 2] = 1
    return np.maximum(canvas, rng.uniform(0.7, 1.0) * lines), "".join(map(str, labels))


def as_drawing(ink: np.ndarray, rng) -> Image.Image:
    return Image.fromarray((255 - 238 * np.clip(ink, 0, 1)).astype(np.uint8))


def as_underlined(ink: np.ndarray, rng) -> Image.Image:
    """The drawing with a line drawn by hand under the number (with the number's pen, waving a little,
    0.05-0.2 digit heights below its lowest ink), as people underline an amount."""
    rows, cols = np.flatnonzero((ink > 0.2).any(1)), np.flatnonzero((ink > 0.2).any(0))
    y = rows[-1] + HEIGHT * rng.uniform(0.05, 0.2)
    phase, period = rng.uniform(0, 2 * math.pi), rng.uniform(20, 60)
    points = [(float(x), y + 4 * math.sin(x / period + phase)) for x in range(int(cols[0]) - 5, int(cols[-1]) + 6, 4)]
    canvas = np.zeros((ink.shape[0] + HEIGHT // 2, ink.shape[1]), np.float32)
    canvas[: ink.shape[0]] = ink
    line = Image.new("L", (canvas.shape[1], canvas.shape[0]), 0)
    ImageDraw.Draw(line).line(points, fill=255, width=max(2, round(HEIGHT * rng.uniform(0.04, 0.1))))
    return as_drawing(np.maximum(canvas, np.asarray(line, np.float32) / 255), rng)


def as_photo(ink: np.ndarray, rng) -> Image.Image:
    big = np.asarray(Image.fromarray(ink.astype(np.float32), "F").resize((ink.shape[1] * 3, ink.shape[0] * 3)))
    h, w = big.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 215 + 35 * (1 - np.hypot(xx - rng.uniform(0, 1), yy - rng.uniform(0, 1)))  # a lamp's fall-off
    shadow = rng.uniform(0.55, 0.85) if rng.random() < 0.5 else 1.0  # a hand's or phone's shadow on one side
    edge = rng.uniform(0.2, 0.8) * w
    light = light * np.where(xx * max(h, w) < edge, shadow, 1.0)
    light = ndimage.gaussian_filter(light, 15)
    paper = light + ndimage.gaussian_filter(rng.normal(0, 6, (h, w)), 1.5)  # paper texture
    pen = np.array([30, 40, 140]) if rng.random() < 0.5 else np.array([25, 25, 30])
    rgb = paper[..., None] * (1 - big[..., None]) + pen * big[..., None] * (light[..., None] / 250)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.5:  # ruled paper
        draw = ImageDraw.Draw(image)
        spacing = int(h * rng.uniform(0.35, 0.5))
        for y in range(int(rng.integers(5, spacing)), h, spacing):
            draw.line([(0, y), (w, y)], fill=(150, 170, 210), width=2)
    image = image.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR, expand=True,
                         fillcolor=(200, 200, 195))
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.8))))
    noisy = np.asarray(image, np.float32) + rng.normal(0, 4, (image.height, image.width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=int(rng.integers(60, 90)))
    return load_image(buffer.getvalue())


def as_scan(ink: np.ndarray, rng) -> Image.Image:
    digit_px = rng.uniform(20, 30)  # the scanner's resolution: a digit this many pixels high
    # A pen line darkens at least half of every scan pixel it crosses (the optics spread it): without
    # this floor a fine pen's digit averaged away below the threshold, and the image had no digit to read.
    spread = max(1, round(0.5 * HEIGHT / digit_px))
    ink = ndimage.grey_dilation(ink, size=(spread, spread))
    small = Image.fromarray(ink.astype(np.float32), "F").resize(
        (max(4, round(ink.shape[1] * digit_px / HEIGHT)), max(4, round(ink.shape[0] * digit_px / HEIGHT))))
    binary = np.asarray(small) > rng.uniform(0.3, 0.5)
    up = np.asarray(Image.fromarray(binary).resize((ink.shape[1], ink.shape[0]), Image.Resampling.NEAREST))
    grey = np.where(up, 20, 245).astype(np.uint8)
    specks = rng.random(grey.shape) < 0.0008
    if rng.random() < 0.5:
        specks = ndimage.binary_dilation(specks)  # (iterations=0 would grow them until nothing changes)
    grey[specks] = 20
    return Image.fromarray(grey)


def as_page_photo(ink: np.ndarray, rng) -> Image.Image:
    """The number in the middle of a sheet photographed from further away, with the desk around it:
    a 3-megapixel JPEG, the number 25-45% of its width, the sheet 60-85%, turned up to 6 degrees."""
    width, height = 2000, 1500
    desk = np.array([(95, 70, 45), (60, 60, 65), (150, 120, 90), (35, 35, 40)][int(rng.integers(4))], np.float32)
    photo = Image.fromarray(np.clip(desk + rng.normal(0, 8, (height, width, 1)), 0, 255).astype(np.uint8))
    sheet = np.full((int(height * rng.uniform(0.6, 0.85)), int(width * rng.uniform(0.6, 0.85)), 3), rng.uniform(215, 245),
                    np.float32)
    scale = rng.uniform(0.25, 0.45) * width / ink.shape[1]
    number = np.asarray(Image.fromarray(ink.astype(np.float32), "F").resize(
        (round(ink.shape[1] * scale), round(ink.shape[0] * scale)))).clip(0, 1)[..., None]
    top, left = (sheet.shape[0] - number.shape[0]) // 2, (sheet.shape[1] - number.shape[1]) // 2
    pen = np.array([30, 40, 140]) if rng.random() < 0.5 else np.array([25, 25, 30])
    region = sheet[top : top + number.shape[0], left : left + number.shape[1]]
    region[:] = region * (1 - number) + pen * number
    angle = float(rng.uniform(-6, 6))
    page = Image.fromarray(sheet.astype(np.uint8)).rotate(angle, Image.Resampling.BILINEAR, expand=True)
    mask = Image.new("L", (sheet.shape[1], sheet.shape[0]), 255).rotate(angle, Image.Resampling.BILINEAR, expand=True)
    photo.paste(page, ((width - page.width) // 2 + int(rng.integers(-60, 61)), (height - page.height) // 2), mask)
    photo = photo.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 2.0))))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=int(rng.integers(70, 90)))
    return load_image(buffer.getvalue())


KINDS = {"drawn": as_drawing, "photo": as_photo, "scan": as_scan, "page": as_page_photo,
         "form": as_drawing, "form-scan": as_scan, "form-photo": as_photo,  # into a form's field (form_number)
         "underlined": as_underlined}
TARGET_KINDS = ["drawn", "photo", "scan"]  # what the targets are set on (and the default)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def measure(model, by, kind: str, count: int, seed: int, save: Path | None) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(count):
        ink, truth = (form_number if kind.startswith("form") else drawn_number)(by, rng, int(rng.integers(2, 9)))
        image = KINDS[kind](ink, rng)
        started = time.perf_counter()
        try:
            answer = read_number(model, image)
            digits, sure = answer.number, answer.verdict == "sure"  # a point read where none was written is wrong
        except NormalizeError:  # refused (too many candidate digits): no number read
            digits, sure = "", False
        seconds = time.perf_counter() - started
        rows.append((truth, digits, sure, seconds))
        if save is not None and n < 12:
            image.save(save / f"{kind}-{n:02d}-{truth}-read-{digits or 'none'}.png")
    short = [r for r in rows if 2 <= len(r[0]) <= 6]
    sure = [r for r in rows if r[2]]
    total = sum(len(t) for t, *_ in rows)
    return {
        "numbers": len(rows),
        "whole": np.mean([t == d for t, d, *_ in rows]),
        "whole 2-6": np.mean([t == d for t, d, *_ in short]),
        "digits": 1 - sum(edit_distance(t, d) for t, d, *_ in rows) / total,
        "segmentation": sum(abs(len(t) - len(d)) for t, d, *_ in rows) / total,
        "sure": len(sure) / len(rows),
        "sure wrong": np.mean([t != d for t, d, *_ in sure]) if sure else 0.0,
        "ms": 1000 * float(np.median([r[3] for r in rows])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a run folder or model file")
    parser.add_argument("--count", type=int, default=200, help="numbers of each kind (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--writers", choices=["held-out", "training"], default="held-out",
                        help="whose digits: the held-out writers (the figures), or the training writers (to tune on)")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=TARGET_KINDS,
                        help="which images (default: drawn photo scan; page: a sheet on a desk, photographed from further away; "
                             "form, form-scan, form-photo: written into a form's field; underlined: a line drawn under it)")
    parser.add_argument("--save-examples", metavar="DIR", help="write the first twelve images of each kind here")
    parser.add_argument("--sure-digit", type=float, default=numbers.SURE_DIGIT,
                        help="the probability from which a digit of a number is sure (to weigh the bar; default: the reader's)")
    args = parser.parse_args()
    numbers.SURE_DIGIT = args.sure_digit
    model = load_model(args.model)
    by = held_out_digits(args.writers)
    save = Path(args.save_examples) if args.save_examples else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    print(f"{args.count} numbers of 2-8 digits per kind, {args.writers} pen writers, synthesized images; model {model.name}\n")
    print("| kind | whole numbers | whole, 2-6 digits | digits | segmentation errors (of digits) | sure | sure but wrong | ms per number (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in args.kinds:
        r = measure(model, by, kind, args.count, args.seed, save)
        print(f"| {kind} | {r['whole']:.1%} | {r['whole 2-6']:.1%} | {r['digits']:.1%} | {r['segmentation']:.1%} | "
              f"{r['sure']:.1%} | {r['sure wrong']:.1%} | {r['ms']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
