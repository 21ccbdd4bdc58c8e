"""The ink of one line of handwriting, for the number reader: either polarity or a transparent
canvas, the paper's uneven light flattened (a shadow is not ink), the desk around a photographed
sheet and printed lines (ruled paper, a form's boxes) removed. SciPy's ``ndimage`` does the
filtering; the Swift port (``LineInk.swift``) does the same, step for step."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage

from digitkit.data.normalize import NOISE_FRACTION, BlankImage, ink_map

SHEET = 0.1  # "light ink" too thick for a pen over this share of a dark image is a sheet of paper on a desk
DESK = 0.6  # darker than this share of the paper's level, a thick region reaching the image's sides is not the sheet
WRITING = 0.25  # darker than its own level by this share of the paper's, a pixel in the "desk" is writing: a shadow
TILT_STEPS = 20  # printed lines are looked for turned up to this many half-degree steps each way (a photo: ±10°)
TILTED = 1.2  # a row profile this much sharper at an angle than level: the lines are turned, and sheared straight


def line_ink(image: Image.Image) -> np.ndarray:
    """Ink strength 0..1 of a line of handwriting: either polarity or a transparent canvas (a sheet
    of paper on a dark desk is dark ink on light, not light ink), with the paper's light flattened,
    the desk around the sheet and printed lines (ruled paper's, a form's) removed; 0 where there is none."""
    ink, polarity = ink_map(image)
    window = _window(ink.shape)
    size = window // 4 | 1  # thicker than a pen line
    dark = None  # where a photo may show the desk under the sheet
    if polarity == "light-on-dark" and ink.max() > 0:
        # Over half as light as the lightest is paper on a desk of any darkness (a wooden desk
        # can be half as light as the paper); thick as no pen writes, over a tenth of the image, it
        # is a sheet, not light writing.
        light = (ink > 0.5 * _strong(ink[ink > 0])).astype(np.uint8)
        if _opened(light, window, window).mean() > SHEET:
            polarity = "dark-on-light"
            dark = _opened(1 - light, size, size)
    if polarity == "dark-on-light" and min(ink.shape) >= 16:
        grey = np.asarray(image.convert("L"))
        ink = _flattened(grey, ink, window)
        paper = _paper(grey)
        desk = _desk(grey, paper, dark if dark is not None else _far_darker_than_paper(grey, paper, size), size)
        if desk is not None:
            ink = np.where(desk, 0, ink)
    if ink.size == 0 or ink.max() < 0.1:
        raise BlankImage("no digits found: the image is blank")
    strong = _strong(ink[ink > 0])
    ink = np.where(ink >= NOISE_FRACTION * strong, np.minimum(ink / max(strong, 1e-6), 1.0), 0).astype(np.float32)
    return np.where(_printed_lines(ink > 0), 0, ink).astype(np.float32)


def _strong(values: np.ndarray) -> np.float32:
    """The level of full ink: the 99.5th percentile of the inked pixels (a few hot pixels are not
    full ink), the nearest-rank value, so the Swift port picks the very same pixel."""
    rank = int(0.995 * (values.size - 1))
    return np.partition(values, rank)[rank]


def _window(shape: tuple[int, ...]) -> int:
    """The flattening's window: a sixth of the image's shorter side (odd, at least 9)."""
    return max(9, int(min(shape) / 6) | 1)


def _flattened(grey: np.ndarray, ink: np.ndarray, window: int) -> np.ndarray:
    """Dark ink relative to the paper around it: the paper's level is estimated by a grey closing
    (which fills in strokes thinner than the window) and the ink is how much darker than it a pixel
    is, as a share of it, so a shadow or a lamp's fall-off is not ink."""
    if grey.shape != ink.shape:
        return ink
    grey = grey.astype(np.float32)
    paper = ndimage.grey_closing(ndimage.uniform_filter(grey, 3), size=(window, window))
    return np.clip((paper - grey) / np.maximum(paper, 32.0), 0, 1)


def _paper(grey: np.ndarray) -> np.uint8:
    """The paper's grey level: the nearest-rank 90th percentile (a number covers far less)."""
    rank = int(0.9 * (grey.size - 1))
    return np.partition(grey, rank, axis=None)[rank]


def _far_darker_than_paper(grey: np.ndarray, paper: np.uint8, size: int) -> np.ndarray | None:
    """Where a photo of paper may show the surface under the sheet: regions under DESK of the
    paper's level (darker than most shadows on it) and thicker than a pen line, when they run along
    at least a quarter of the image's border (a stroke that runs off the image covers a few pixels
    of it). None when the photo shows only paper, as most do."""
    thick = _opened((grey < DESK * paper).astype(np.uint8), size, size)
    return thick if _edge(thick).mean() >= 0.25 else None


def _desk(grey: np.ndarray, paper: np.uint8, dark: np.ndarray | None, grow: int) -> np.ndarray | None:
    """The desk under a photographed sheet: the regions of ``dark`` that reach the image's border
    (a bold stroke inside the sheet does not), grown by ``grow`` pixels over the sheet's blurred
    edge. None when there are none, or when they hold writing (strokes far darker than their own
    level): then they are a deep shadow over the paper, whose ink the flattening keeps."""
    if dark is None:
        return None
    regions, _ = ndimage.label(dark, structure=np.ones((3, 3), bool))
    edge = _edge(regions)
    desk = np.isin(regions, edge[edge > 0])
    values = grey[desk]
    if not values.size:
        return None
    level = np.partition(values, (values.size - 1) // 2)[(values.size - 1) // 2]
    if np.count_nonzero(values < float(level) - WRITING * float(paper)) > 0.01 * values.size:
        return None
    return _spread(desk.astype(np.uint8), grow, grow, grow=True).astype(bool)


def _edge(plane: np.ndarray) -> np.ndarray:
    """The image's border pixels, each once."""
    return np.concatenate([plane[0], plane[-1], plane[1:-1, 0], plane[1:-1, -1]])


def _spread(mask: np.ndarray, rows: int, columns: int, grow: bool) -> np.ndarray:
    """Binary dilation (or erosion) of a 0/1 mask by a rows x columns rectangle (odd sides: centred),
    outside the image counting as 0: a column pass then a row pass (the same result as the
    rectangle, at a cost that does not grow with its size)."""
    extreme = ndimage.maximum_filter1d if grow else ndimage.minimum_filter1d
    if rows > 1:
        mask = extreme(mask, rows, axis=0, mode="constant", cval=0)
    if columns > 1:
        mask = extreme(mask, columns, axis=1, mode="constant", cval=0)
    return mask


def _opened(mask: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """What of a 0/1 mask a rows x columns rectangle fits in (binary opening)."""
    return _spread(_spread(mask, rows, columns, grow=False), rows, columns, grow=True)


def _closed(mask: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """A 0/1 mask with gaps narrower than a rows x columns rectangle filled (binary closing)."""
    return _spread(_spread(mask, rows, columns, grow=True), rows, columns, grow=False)


def _printed_lines(mask: np.ndarray) -> np.ndarray:
    """Pixels of printed lines: ruled or squared paper's lines across nearly all of the image, and a
    form's lines around the writing (an underline, a box, a comb of boxes, one a digit). A form's
    horizontal line is thin, straight and at least half again as long as the ink is high, which no
    digit's stroke is; its vertical lines are the thin straight strokes that meet its horizontal
    lines with both ends (a box's sides, a comb's walls) or, under half the ink's height, with one (a
    comb's ticks): a 1 standing on an underline meets it with one end and is taller. Where a stroke
    crosses a line, the line's pixels between the stroke's two sides stay ink, so the stroke is not
    cut in two, and where one lies along a line (``_along``) its ink stays; the bits a jagged line
    leaves touching it go with it (``_debris``). In a photo turned a few degrees (``_tilt``) the
    lines are looked for on the ink sheared straight, a row's wiggle allowed."""
    inked = mask.astype(np.uint8)
    tilt = _tilt(inked)
    if tilt == 0.0:
        return _straight_lines(inked, wiggle=False)
    rows, cols = _sheared(mask.shape, tilt)
    straight = np.zeros((rows.max() + 1, cols.max() + 1), np.uint8)
    straight[rows, cols] = inked
    return _straight_lines(straight, wiggle=True)[rows, cols]


def _tilt(inked: np.ndarray) -> float:
    """The slope of the image's long lines: of the half-degree steps up to ``TILT_STEPS`` each way,
    the one whose row profile (each pixel's row, sheared by that slope) is sharpest (the sum of its
    squared counts), if that is ``TILTED`` times the level one's; else 0."""
    ys, xs = np.nonzero(inked)
    if not ys.size:
        return 0.0
    best, best_slope, level = -1, 0.0, 0
    for step in [0] + [sign * k for k in range(1, TILT_STEPS + 1) for sign in (-1, 1)]:
        slope = math.tan(math.radians(0.5 * step))
        rows = ys - _shifts(inked.shape[1], slope)[xs]
        score = int((np.bincount(rows - rows.min()).astype(np.int64) ** 2).sum())
        level = score if step == 0 else level
        if score > best:
            best, best_slope = score, slope
    return best_slope if best >= TILTED * level else 0.0


def _sheared(shape: tuple[int, int], slope: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel goes when the image is sheared straight: each column moved up by its share
    of the slope (lines across come level), then each row along by its share (lines down come
    upright); whole pixels, so the way back is exact. (rows, columns), each the image's shape."""
    height, width = shape
    rows = np.arange(height)[:, None] - _shifts(width, slope)[None, :]
    rows -= rows.min()
    cols = np.arange(width)[None, :] + _shifts(rows.max() + 1, slope)[rows]
    return rows, cols - cols.min()


def _shifts(count: int, slope: float) -> np.ndarray:
    """How far the slope moves each of ``count`` columns (or rows), to the nearest whole pixel."""
    return np.floor(np.arange(count) * slope + 0.5).astype(np.int64)


def _straight_lines(inked: np.ndarray, wiggle: bool) -> np.ndarray:
    """``_printed_lines`` along the rows and columns; ``wiggle``: a line may step by a row (or a
    column) on its way, as a sheared one does."""
    height, width = inked.shape
    tall = _ink_height(inked)
    # A thick bar is a stroke (a long dash), not a printed line: lines are thinner than a tenth of the ink's height.
    thickest = max(5, tall // 10 | 1)
    step = 3 if wiggle else 1
    across = _opened(_spread(inked, step, 1, grow=True), 1, max(9, min(width * 9 // 10, 3 * tall // 2)) | 1) & inked
    down = _opened(_spread(inked, 1, step, grow=True), max(9, height * 9 // 10) | 1, 1) & inked
    thick = _opened(across | down, thickest, thickest)
    across, down = across & (1 - thick), down & (1 - thick)
    down |= _form_walls(inked & (1 - thick) & (1 - across), across, tall, wiggle)
    rest = inked & (1 - (across | down))
    crossed = (_closed(rest, 5, 1) & across) | (_closed(rest, 1, 5) & down)
    thin = _thickness(across, 0)
    along = _along(across, inked & (1 - down), 0, thin) | _along(down, inked & (1 - across), 1, _thickness(down, 1))
    lines = (across | down) & (1 - crossed) & (1 - along)
    return (lines | _debris(inked & (1 - lines), lines, 2 * thin + 3)).astype(bool)


def _debris(rest: np.ndarray, lines: np.ndarray, flat: int) -> np.ndarray:
    """What a jagged line leaves where it is taken away: bits of ink no higher than ``flat`` that
    touch a line's pixels (on a form's baseline they would read as decimal points)."""
    debris = np.zeros_like(rest)
    if not lines.any():
        return debris
    near = _spread(lines, 3, 3, grow=True)
    labels, _ = ndimage.label(rest, structure=np.ones((3, 3), bool))
    for number, (rows, cols) in enumerate(ndimage.find_objects(labels), 1):
        if rows.stop - rows.start <= flat:
            piece = labels[rows, cols] == number
            if (piece & (near[rows, cols] > 0)).any():
                debris[rows, cols] |= piece
    return debris


def _along(lines: np.ndarray, inked: np.ndarray, axis: int, thickness: int) -> np.ndarray:
    """A stroke lying along a line (a 2's base written on it): where the ink is over twice as thick
    as the line (``thickness``; a jagged scan's steps are not), for over twice that length."""
    if not lines.any():
        return lines
    size = 2 * thickness + 3
    thicker = lines & (_opened(inked, size, 1) if axis == 0 else _opened(inked, 1, size))
    return _opened(thicker, 1, size) if axis == 0 else _opened(thicker, size, 1)


def _thickness(lines: np.ndarray, axis: int) -> int:
    """The lines' thickness: the median length (nearest rank) of their runs of pixels across them
    (down the columns for ``axis`` 0, along the rows for 1); 0 for none."""
    if not lines.any():
        return 0
    edges = np.diff(np.pad(lines.astype(np.int8), [(1, 1) if a == axis else (0, 0) for a in (0, 1)]), axis=axis)
    if axis == 0:
        edges = edges.T  # column by column, so each run's start comes just before its end
    starts, ends = np.nonzero(edges == 1)[1], np.nonzero(edges == -1)[1]
    if not starts.size:
        return 0
    return int(np.sort(ends - starts)[(starts.size - 1) // 2])


def _ink_height(inked: np.ndarray) -> int:
    """How high the writing is: the rows from the 1st to the 99th percentile of its inked pixels
    (nearest rank), so that a scanner's specks above and below do not count."""
    rows = np.nonzero(inked)[0]  # in order: row by row
    if not rows.size:
        return 0
    return int(rows[(rows.size - 1) * 99 // 100] - rows[(rows.size - 1) // 100] + 1)


def _form_walls(inked: np.ndarray, across: np.ndarray, tall: int, wiggle: bool) -> np.ndarray:
    """A form's vertical lines (see ``_printed_lines``): thin straight vertical runs at least a
    quarter of the ink's height, each meeting a horizontal line (``across``) with both ends, or with
    one end and under half the ink's height; two at least (a box has two sides)."""
    walls = np.zeros_like(inked)
    if not across.any():
        return walls
    runs = _opened(_spread(inked, 1, 3 if wiggle else 1, grow=True), max(5, tall // 4) | 1, 1) & inked
    reach = 5 if wiggle else 3
    near = _spread(across, reach, reach, grow=True)  # a line's pixels and the ones touching them
    labels, _ = ndimage.label(runs, structure=np.ones((3, 3), bool))
    found = []
    for number, (rows, cols) in enumerate(ndimage.find_objects(labels), 1):
        top, bottom = bool(near[rows.start, cols].any()), bool(near[rows.stop - 1, cols].any())
        if (top and bottom) or ((top or bottom) and rows.stop - rows.start < tall / 2):
            found.append(number)
    if len(found) >= 2:
        walls = np.isin(labels, found).astype(np.uint8)
    return walls
