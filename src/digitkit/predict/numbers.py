"""Read a whole number: one line of handwritten digits in a drawing, a scan or a photo of paper.

The ink is found as for one digit, with the paper's uneven light flattened first (a photo's shadow
is not ink), the desk around a photographed sheet and printed lines (ruled or squared paper's, a
form's line, box or comb of boxes) removed (``predict.ink``). Its pieces are found with
8-connectivity (a thin diagonal stroke stays one piece), pieces that stand over one another are one
digit (a 5's flag, a 4's bar, a broken loop), neighbours that nearly touch may be joined and a piece
too wide for one digit is cut, each where the model is surest (a cut, or a close call between one
digit and two, is never "sure", nor is a digit far lower than the others, nor one read at under
0.97: a number is right only when all of its digits are), small round dots on the baseline between
digits are decimal points (not "sure" among other specks), other specks are dropped and so are a
short mark that joins no digit (a page's edge, a 5's flag apart) and a flat one wider than two
digits (a line drawn under the number), and each digit is fitted into the model's input exactly as a
single digit is (``data.normalize.fit_digit``); all digits of an image are read in one batch. A
number written small in a large photo is read again from a closer look at it (``zoom_region``).

SciPy's ``ndimage`` does the image work (labelling, morphology, filters); the grouping and the
choice of cuts are digitkit's own, since no library segments a line of handwritten digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from digitkit.classifier import Classifier
from digitkit.data.normalize import BlankImage, NormalizeError, fit_digit, load_image
from digitkit.predict.answer import Answer
from digitkit.predict.ink import line_ink

MAX_DIGITS = 32  # more candidate digits than this is not a number (printed text, noise)
MAX_PARTS = 3  # a digit is drawn in at most this many pieces (a 4's two strokes, a 5's flag, a broken loop)
JOINED_WIDTH = 1.3  # pieces joined into one digit span at most this many line heights
JOIN_GAP = 0.1  # and stand at most this many line heights apart (parts of one digit nearly touch)
JOIN_DOUBT = 1.0  # a join that reads surer than its parts apart by less than this (log) is a guess
POINT = "."
SPECK = 0.2  # a piece lower and narrower than this share of the line's height is a speck or a point
SPECKLED = 2  # with this many other specks about (a scan's noise), a point may be one of them: not "sure"
SHORT = 0.4  # a piece lower than this, with no other piece close by or joining none, is no digit (a page's edge, a dash)
LINE = 1.5  # lower than SHORT and wider than this many line heights: a line drawn under or through the number
LOW = 0.6  # a digit lower than this share of the line's height may be a piece of one (a 1's flag): never "sure"
SURE_DIGIT = 0.97  # a digit of a number is "sure" from this probability (alone, from 0.9): a number needs all of its digits right
SPLIT_FROM = 0.9  # a piece wider than this many line heights may be touching digits
MUST_SPLIT = 1.7  # wider than this, it is
WIDE = 1.0  # narrower, a piece is cut only into sure digits; wider, kept whole, a close call is a guess
DIGIT_BONUS = 0.3  # (log) each digit (not lower than LOW) adds this: two sure digits outweigh one sure pair
TALL = 1.25  # a 1 taller than this many times the other digits' median height is not "sure" (a form's wall)
CUTS = 6  # a piece that may be touching digits is tried at this many of its faintest columns
ZOOM_BELOW = 48  # digits lower than this many pixels as read, in a photo reduced to read, are read again closer


@dataclass
class DigitRead:
    """One character of a number: a digit (with the model's answer) or a decimal point."""

    label: str
    confidence: float
    verdict: str  # "sure", "not sure", "not a class", or "point"
    box: tuple[int, int, int, int]  # x, y, width, height in the image's own pixels
    probabilities: dict[str, float] | None = None
    input: np.ndarray | None = None  # the 28x28 the model saw


@dataclass
class NumberAnswer:
    """What the model reads in one image of a number. ``verdict`` is "sure" only when every digit is
    sure; ``unsure`` lists the positions (in ``number``) of the digits that are not."""

    number: str
    verdict: str  # "sure", "not sure" or "no digits found"
    digits: list[DigitRead] = field(default_factory=list)
    unsure: list[int] = field(default_factory=list)
    message: str | None = None
    size: tuple[int, int] = (0, 0)  # the image's width and height, which the boxes are in

    @classmethod
    def of(cls, digits: list[DigitRead], size: tuple[int, int]) -> NumberAnswer:
        if not any(d.label != POINT for d in digits):
            return cls("", "no digits found", [], [], "no digits found: the image has no handwriting", size)
        unsure = [i for i, d in enumerate(digits) if d.verdict not in ("sure", "point")]
        message = None if not unsure else "not sure of the digit" + ("s" if len(unsure) > 1 else "") + \
            " at position " + ", ".join(str(i + 1) for i in unsure)
        return cls("".join(d.label for d in digits), "not sure" if unsure else "sure", digits, unsure, message, size)


# -- pieces, digits, points ----------------------------------------------------------------------
@dataclass
class Piece:
    labels: list[int]  # the connected components it is made of
    top: int
    bottom: int  # exclusive
    left: int
    right: int  # exclusive
    guess: bool = False  # where this digit ends is a guess: a cut through touching ink, or a close call

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def joined(self, other: Piece) -> Piece:
        return Piece(self.labels + other.labels, min(self.top, other.top), max(self.bottom, other.bottom),
                     min(self.left, other.left), max(self.right, other.right), self.guess or other.guess)


def _pieces(mask: np.ndarray) -> tuple[np.ndarray, list[Piece]]:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    pieces = [Piece([i + 1], s[0].start, s[0].stop, s[1].start, s[1].stop)
              for i, s in enumerate(ndimage.find_objects(labels))]
    return labels, pieces


def _line_height(pieces: list[Piece]) -> float:
    """The height of a digit in this line: the median height of the tall pieces."""
    tallest = max(p.height for p in pieces)
    return float(np.median([p.height for p in pieces if p.height >= 0.4 * tallest]))


def _stacked(a: Piece, b: Piece) -> bool:
    """One stands over the other: nearly all of the narrower one lies within the other's columns."""
    overlap = min(a.right, b.right) - max(a.left, b.left)
    return overlap >= 0.8 * min(a.width, b.width)


def _group(pieces: list[Piece]) -> list[Piece]:
    """Pieces that stand over one another (surely parts of one digit) joined, left to right."""
    groups: list[Piece] = []
    for piece in sorted(pieces, key=lambda p: p.left):
        for i, group in enumerate(groups):
            if _stacked(group, piece):
                groups[i] = group.joined(piece)
                break
        else:
            groups.append(piece)
    merged = True
    while merged:  # a joined group can now stand over another
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if _stacked(groups[i], groups[j]):
                    groups[i] = groups[i].joined(groups.pop(j))
                    merged = True
                    break
            if merged:
                break
    return sorted(groups, key=lambda g: (g.left + g.right) / 2)


def _is_drawn_line(piece: Piece, height: float) -> bool:
    """A hand-drawn line under or through the number (not straight enough to be a printed one):
    flatter than any digit and wider than two of them side by side."""
    return piece.height < SHORT * height and piece.width > LINE * height


def _has_neighbour(unit: Piece, units: list[Piece], height: float) -> bool:
    """Another piece stands within joining distance, across and down (the short piece may be part of its digit)."""
    return any(other is not unit and max(other.left - unit.right, unit.left - other.right,
                                         other.top - unit.bottom, unit.top - other.bottom) <= JOIN_GAP * height
               for other in units)


def _is_point(speck: Piece, digits: list[Piece], height: float) -> bool:
    """A decimal point: a small roundish dot on the baseline, with a digit on each side and a gap to each."""
    if not digits or not 0.06 * height <= max(speck.width, speck.height) <= 0.35 * height:
        return False
    if not 0.4 <= speck.width / max(speck.height, 1) <= 2.5:
        return False
    baseline = float(np.median([d.bottom for d in digits]))
    centre = (speck.left + speck.right) / 2
    left = [d for d in digits if d.right <= speck.left]
    right = [d for d in digits if d.left >= speck.right]
    return bool(left and right and speck.bottom >= baseline - 0.3 * height and speck.top >= baseline - 0.6 * height
                and not any(d.left < centre < d.right for d in digits))


# -- reading -------------------------------------------------------------------------------------
class _Reader:
    """The digits of one image, read with the classifier. The segmentation asks about the same pieces
    more than once (a cut's halves, then the joins, then the answer): each is fitted and read once."""

    def __init__(self, classifier: Classifier, ink: np.ndarray, labels: np.ndarray, height: float):
        self.classifier, self.ink, self.labels, self.height = classifier, ink, labels, height
        self.known: dict[tuple, tuple[np.ndarray, np.ndarray] | None] = {}

    def crop(self, piece: Piece) -> np.ndarray:
        """The piece's own ink (not its neighbours'), within its columns, cropped to its box."""
        window = np.s_[piece.top : piece.bottom, piece.left : piece.right]
        ink = np.where(np.isin(self.labels[window], piece.labels), self.ink[window], 0)
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        if not len(rows):
            raise BlankImage("no ink in this part")
        return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    def read(self, pieces: list[Piece]) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Each piece's 28x28 input and probabilities (None: no ink in it); the new ones in one batch."""
        keys = [(tuple(p.labels), p.top, p.bottom, p.left, p.right) for p in pieces]
        new: dict[tuple, np.ndarray] = {}
        for key, piece in zip(keys, pieces):
            if key not in self.known and key not in new:
                try:
                    new[key] = fit_digit(self.crop(piece))
                except BlankImage:
                    self.known[key] = None
        if new:
            for key, probs in zip(new, self.classifier.predict(np.stack(list(new.values())))):
                self.known[key] = (new[key], probs)
        return [self.known[key] for key in keys]

    def sureness(self, pieces: list[Piece]) -> list[float | None]:
        """log of the model's top probability for each piece (None: no ink in it)."""
        return [None if r is None else math.log(max(float(r[1].max()), 1e-6)) for r in self.read(pieces)]

    def split(self, piece: Piece, depth: int = 0) -> list[Piece]:
        """The piece as one digit, or cut into two (or more) where the model is surest of both
        halves: cut when the halves read surer than the whole (their geometric mean; a piece
        narrower than ``WIDE`` line heights only into halves read as sure digits), and always when
        the piece is too wide for one digit."""
        if piece.width < SPLIT_FROM * self.height or depth >= 3:
            return [piece]
        inside = np.isin(self.labels[piece.top : piece.bottom, piece.left : piece.right], piece.labels)
        profile = np.where(inside, self.ink[piece.top : piece.bottom, piece.left : piece.right], 0).sum(0)
        lo, hi = int(0.25 * piece.width), int(0.75 * piece.width)
        if hi - lo < 2:
            return [piece]
        cuts: list[int] = []  # the faintest columns (of the 12 faintest), no two side by side
        for column in sorted(range(lo, hi), key=lambda c: profile[c])[:12]:
            if all(abs(column - other) > 1 for other in cuts):
                cuts.append(column)
        cuts = sorted(cuts[:CUTS])
        halves = [(Piece(piece.labels, piece.top, piece.bottom, piece.left, piece.left + cut, True),
                   Piece(piece.labels, piece.top, piece.bottom, piece.left + cut, piece.right, True)) for cut in cuts]
        sure = self.sureness([piece] + [half for pair in halves for half in pair])
        options = [((sure[1 + 2 * i] + sure[2 + 2 * i]) / 2, pair) for i, pair in enumerate(halves)
                   if sure[1 + 2 * i] is not None and sure[2 + 2 * i] is not None]
        if sure[0] is None or not options:
            return [piece]
        best, (left, right) = max(options, key=lambda option: option[0])
        # narrower than a digit (a broken stroke, two narrow digits touching): cut only into sure digits
        narrow = piece.width < WIDE * self.height
        if piece.width < MUST_SPLIT * self.height and (best <= sure[0] or (narrow and best < math.log(SURE_DIGIT))):
            # wider than a digit, and two digits would read nearly as well
            piece.guess = best > sure[0] - JOIN_DOUBT and not narrow
            return [piece]
        return self.split(left, depth + 1) + self.split(right, depth + 1)


def read_number(classifier: Classifier, image: Image.Image) -> NumberAnswer:
    """The number in an image of one line of handwriting (see the module's docstring). A number
    written small in a large photo (a sheet on a desk) is read again from a closer look at it."""
    answer = _read_line(classifier, image)
    region = zoom_region(answer, image.width)
    if region is None or image.info.get("source") is None:
        return answer
    try:
        closer = _read_line(classifier, load_image(image.info["source"], region))
    except NormalizeError:  # the file changed, or decodes no further than the first look did
        return answer
    if not closer.digits:
        return answer
    for digit in closer.digits:
        digit.box = (digit.box[0] + region[0], digit.box[1] + region[1], *digit.box[2:])
    closer.size = answer.size
    return closer


def zoom_region(answer: NumberAnswer, width: int) -> tuple[int, int, int, int] | None:
    """Where to look closer (x, y, width, height in the image's own pixels), for an answer read
    from an image reduced to ``width`` pixels across: around the digits, when they are under
    ``ZOOM_BELOW`` pixels high as read and the region is under half the image, so a closer look
    at a photo reduced to read sees them at least twice as large. None otherwise."""
    digits = [d for d in answer.digits if d.label != POINT]
    if not digits or not width:
        return None
    scale = answer.size[0] / width
    height = float(np.median([d.box[3] for d in digits]))
    if height / scale >= ZOOM_BELOW:
        return None
    margin = round(height)
    left = max(0, min(d.box[0] for d in answer.digits) - margin)
    top = max(0, min(d.box[1] for d in answer.digits) - margin)
    right = min(answer.size[0], max(d.box[0] + d.box[2] for d in answer.digits) + margin)
    bottom = min(answer.size[1], max(d.box[1] + d.box[3] for d in answer.digits) + margin)
    if 2 * max(right - left, bottom - top) > max(answer.size):
        return None
    return left, top, right - left, bottom - top


def _read_line(classifier: Classifier, image: Image.Image) -> NumberAnswer:
    full = image.info.get("full_size", image.size)
    scale = (full[0] / image.width, full[1] / image.height)
    try:
        ink = line_ink(image)
    except BlankImage:
        return NumberAnswer.of([], full)
    labels, pieces = _pieces(ink > 0)
    if not pieces:
        return NumberAnswer.of([], full)
    height = _line_height(pieces)
    is_small = [p.height < SPECK * height and p.width < SPECK * height for p in pieces]
    small = [p for p, tiny in zip(pieces, is_small) if tiny]
    large = [p for p, tiny in zip(pieces, is_small) if not tiny and not _is_drawn_line(p, height)]
    # Joining and the neighbour search are quadratic in the pieces: far more than a number's digits
    # can be made of is refused first.
    units = large
    if len(large) <= MAX_PARTS * MAX_DIGITS:
        grouped = _group(large)
        units = [u for u in grouped if u.height >= SHORT * height or _has_neighbour(u, grouped, height)]
    if len(units) > MAX_DIGITS:
        raise NormalizeError(f"the image holds {len(units)} candidate digits, more than a number of "
                             f"{MAX_DIGITS} can have: photograph or crop one line of handwriting")
    reader = _Reader(classifier, ink, labels, height)
    units = [part for unit in units for part in reader.split(unit)]
    # a short piece was kept for a neighbour to join: left on its own, it is no digit (a 5's flag apart)
    digits = [d for d in _best_segmentation(reader, units) if d.height >= SHORT * height]
    points = [s for s in small if _is_point(s, digits, height)]
    speckled = len(small) - len(points) >= SPECKLED
    return NumberAnswer.of(_answers(reader, digits, points, scale, speckled), full)


def _best_segmentation(reader: _Reader, units: list[Piece]) -> list[Piece]:
    """Which neighbouring pieces make one digit: of every way to join up to ``MAX_PARTS`` neighbours
    (no wider than ``JOINED_WIDTH`` line heights), the one whose digits the model is surest of
    (the product of their confidences: a part that reads as no digit costs much), each digit
    of at least ``LOW`` line heights weighing ``DIGIT_BONUS`` more, so two digits read surely are
    not joined into one read as surely (a lower part, a 5's flag say, is weighed as it reads)."""
    candidates: dict[tuple[int, int], Piece] = {}
    for i in range(len(units)):
        joined = units[i]
        candidates[i, i + 1] = joined
        for j in range(i + 1, min(i + MAX_PARTS, len(units))):
            if set(units[j].labels) & set(joined.labels):
                break  # halves of a cut piece: the cut already weighed them against the whole
            if units[j].left - joined.right > JOIN_GAP * reader.height:
                break  # a clear gap: the next piece is the next digit
            joined = joined.joined(units[j])
            if joined.width > JOINED_WIDTH * reader.height:
                break
            candidates[i, j + 1] = joined
    sure = {key: value + (DIGIT_BONUS if candidates[key].height >= LOW * reader.height else 0.0)
            for key, value in zip(candidates, reader.sureness(list(candidates.values()))) if value is not None}
    if not sure:
        return []
    best = [0.0] + [-np.inf] * len(units)
    came = [0] * (len(units) + 1)
    for end in range(1, len(units) + 1):
        for start in range(max(0, end - MAX_PARTS), end):
            if (start, end) in sure and best[start] + sure[start, end] > best[end]:
                best[end], came[end] = best[start] + sure[start, end], start
    chosen, end = [], len(units)
    while end > 0:
        start, piece = came[end], candidates[came[end], end]
        apart = [sure.get((i, i + 1)) for i in range(start, end)]
        if end - start > 1 and None not in apart and sure[start, end] - sum(apart) < JOIN_DOUBT:
            piece.guess = True  # the parts read nearly as well as separate digits: a guess
        chosen.append(piece)
        end = start
    return chosen[::-1]


def _answers(reader: _Reader, digits: list[Piece], points: list[Piece], scale, speckled: bool) -> list[DigitRead]:
    """The model's answer for each digit, in one batch, and the points, left to right. A digit cut
    from touching ink is never "sure": its edge was a guess, however sure the model is of its shape;
    nor is a digit far lower than the line's others, which may be a piece of one, nor one under
    ``SURE_DIGIT``: a number is right only when all of its digits are, nor a 1 ``TALL`` times as
    high as the other digits (a form's wall whose lines a scan broke). A point among specks
    (``speckled``) is "not sure": it may be one of them."""
    def box(top, bottom, left, right):
        return (round(left * scale[0]), round(top * scale[1]), max(1, round((right - left) * scale[0])),
                max(1, round((bottom - top) * scale[1])))

    out: list[tuple[float, DigitRead]] = []
    for piece, read in zip(digits, reader.read(digits)):
        if read is None:
            continue
        seen, probs = read
        window = reader.labels[piece.top : piece.bottom, piece.left : piece.right]
        rows = np.flatnonzero(np.isin(window, piece.labels).any(1))
        where = box(piece.top + rows[0], piece.top + rows[-1] + 1, piece.left, piece.right)
        answer = Answer.of(probs, reader.classifier.labels, 2, seen)
        low = rows[-1] + 1 - rows[0] < LOW * reader.height
        doubt = piece.guess or low or answer.confidence < SURE_DIGIT
        said = "not sure" if doubt and answer.verdict == "sure" else answer.verdict
        out.append((piece.left, DigitRead(answer.label, answer.confidence, said, where, answer.probabilities, seen)))
    others = [d.box[3] for _, d in out if d.label != "1"]
    for _, digit in out:  # a 1 far taller than the other digits may be a form's wall left standing
        if others and digit.label == "1" and digit.verdict == "sure" and digit.box[3] > TALL * np.median(others):
            digit.verdict = "not sure"
    for p in points:
        out.append((p.left, DigitRead(POINT, 1.0, "not sure" if speckled else "point", box(p.top, p.bottom, p.left, p.right))))
    return [d for _, d in sorted(out, key=lambda item: item[0])]
