"""Real pen digits (pendigits): 7,494 digits drawn on a tablet screen by 30 writers who are not in
MNIST, shipped in ``digitkit/data/pendigits/`` (see its README for provenance and licence).

The file lists the digits grouped by writer, about 250 each in file order, so writers are split by
contiguous blocks: ``TRAINING_WRITERS`` are rendered into the training set; ``CALIBRATION_WRITERS``
are never trained on but fit the confidence (how sure the model should be with a person it never
saw); the rest are the benchmark's real-writer stand-in and take no part in training at all.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digitkit import DigitkitError
from digitkit.data.handwriting.pen import Writer, drawing, smooth_curve, to_unit_box

PENDIGITS_FILE = Path(__file__).parents[1] / "pendigits" / "pendigits-orig.tra.gz"
WRITERS = 30
TRAINING_WRITERS = range(20)
CALIBRATION_WRITERS = range(20, 24)
BENCHMARK_WRITERS = range(24, 30)  # the last 1,498 digits
TABLET = 500  # the tablet's box: coordinates 0..500, y grows upwards


@dataclass(frozen=True)
class PenDigit:
    label: int
    writer: int  # 0..29, from the digit's block in file order
    strokes: list  # (n, 2) arrays of tablet points, x right, y down


def read_pendigits(path: str | Path = PENDIGITS_FILE) -> list[PenDigit]:
    """Every digit of a UNIPEN-style pendigits file, with its writer block."""
    try:
        text = gzip.decompress(Path(path).read_bytes()).decode("ascii")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise DigitkitError(f"{path}: cannot read the pen digits ({err})") from None
    digits: list[tuple[int, list]] = []
    strokes: list | None = None
    stroke: list = []
    for line in text.splitlines():
        if line.startswith(".SEGMENT DIGIT"):
            strokes = []
            digits.append((int(line.split('"')[1]), strokes))
        elif line.startswith(".PEN_DOWN"):
            stroke = []
        elif line.startswith(".PEN_UP"):
            if strokes is not None and stroke:
                strokes.append(np.array(stroke, np.float64) * (1, -1) + (0, TABLET))  # y down
        elif line[:1] == " " and line.strip():
            x, y = line.split()
            stroke.append((float(x), float(y)))
    if not digits:
        raise DigitkitError(f"{path}: no pen digits in the file")
    count = len(digits)
    return [PenDigit(label, i * WRITERS // count, s) for i, (label, s) in enumerate(digits) if s]


def split_by_writer(digits: list[PenDigit]) -> tuple[list[PenDigit], list[PenDigit], list[PenDigit]]:
    """The digits of the training, calibration and benchmark writers."""
    return tuple([d for d in digits if d.writer in writers]
                 for writers in (TRAINING_WRITERS, CALIBRATION_WRITERS, BENCHMARK_WRITERS))


def smoothed(digit: PenDigit) -> list[np.ndarray]:
    """The strokes as smooth curves through the 100 ms samples, in a unit box (1 high)."""
    return to_unit_box([smooth_curve(s, steps=6) for s in digit.strokes])


def render(digit: PenDigit, rng: np.random.Generator, squared: bool = False) -> Image.Image:
    """The digit as a drawing app saves it (canvas, pen width, polarity, transparency): the writer's
    own shape, with only a slight change of slant, rotation and size ratio. ``squared``: widened
    towards a square, as forms that scale every cell to a square box, and written with a marker."""
    strokes = smoothed(digit)
    aspect = rng.uniform(0.9, 1.1)
    if squared:
        width = max(np.ptp(np.vstack(strokes)[:, 0]), 1e-3)
        aspect = min(1 / width, 3.0)  # a 1 fills its box: up to three times as wide
    writer = Writer(slant=rng.normal(0, 0.08), rotation=np.radians(rng.normal(0, 3)), aspect=aspect, jitter=0.0,
                    pen=0.1)
    return drawing(strokes, rng, writer, pen_scale=rng.uniform(1.2, 2.0) if squared else 1.0)
