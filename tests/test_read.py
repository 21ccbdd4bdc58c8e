"""Reading whole numbers (predict.numbers): a line of MNIST test digits the shared model reads right
one by one, composed as drawings are (dark on light, each digit where it was put), read back whole:
the number, its boxes, a touching pair cut, a digit broken in two kept whole, a decimal point, specks
dropped, an empty image, too many candidates refused; through the CLI and the HTTP API too."""

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from scipy import ndimage

from digitkit.cli import main
from digitkit.classifier import load_classifier
from digitkit.data.normalize import NormalizeError, load_image
from digitkit.predict import read_images
from digitkit.predict.numbers import SURE_DIGIT, read_number
from digitkit.serve import create_app

SCALE = 3  # MNIST's 28 px digits drawn at 84 px


@pytest.fixture(scope="module")
def model(onnx_model):
    return load_classifier(onnx_model)


@pytest.fixture(scope="module")
def well_read(model, mnist):
    """{digit: images of it} among MNIST test digits the model reads right, one by one, and surely
    enough to be a sure digit of a number."""
    images = mnist.x_test[:600]
    answers = read_images(model, [Image.fromarray(255 - image) for image in images])
    chosen: dict[int, list[np.ndarray]] = {}
    for image, label, answer in zip(images, mnist.y_test[:600], answers):
        if answer.label == str(label) and answer.confidence >= SURE_DIGIT:
            chosen.setdefault(int(label), []).append(image)
    assert len(chosen) == 10
    return chosen


def compose(digits: list[np.ndarray], gap: int = 20, point_after: int | None = None, height: int = 140):
    """Dark digits on light paper, left to right, ``gap`` px apart (negative: overlapping); returns the
    image and where each digit's ink lies (x from, x to)."""
    crops = []
    for image in digits:
        big = np.asarray(Image.fromarray(image).resize((28 * SCALE, 28 * SCALE), Image.Resampling.BILINEAR))
        cols = np.flatnonzero((big > 60).any(0))
        crops.append(big[:, cols[0] : cols[-1] + 1])
    width = sum(c.shape[1] for c in crops) + gap * (len(crops) - 1) + 80 + (40 if point_after is not None else 0)
    ink = np.zeros((height, width), np.float32)
    x, spans = 40, []
    for i, crop in enumerate(crops):
        ink[20 : 20 + crop.shape[0], x : x + crop.shape[1]] = np.maximum(ink[20 : 20 + crop.shape[0], x : x + crop.shape[1]], crop)
        spans.append((x, x + crop.shape[1]))
        x += crop.shape[1] + gap
        if point_after == i:
            ink[20 + 20 * SCALE : 20 + 20 * SCALE + 9, x : x + 9] = 255  # on the baseline
            x += 9 + gap
    return Image.fromarray((255 - ink).astype(np.uint8)), spans


def test_a_line_of_digits_reads_as_a_number_with_its_boxes(model, well_read):
    digits = [well_read[2][0], well_read[0][0], well_read[2][1], well_read[6][0]]
    image, spans = compose(digits)
    answer = read_number(model, image)
    assert answer.number == "2026" and len(answer.digits) == 4
    for digit, (left, right) in zip(answer.digits, spans):
        x, y, width, height = digit.box
        assert abs(x - left) <= 3 and abs(x + width - right) <= 3 and 15 <= y <= 40 and height > 40
    assert answer.verdict == ("sure" if all(d.verdict == "sure" for d in answer.digits) else "not sure")
    assert all(d.input.shape == (28, 28) for d in answer.digits)


def test_a_touching_pair_is_cut_and_a_broken_digit_kept_whole(model, well_read):
    image, _ = compose([well_read[4][0], well_read[7][0]], gap=-4)
    assert len(read_number(model, image).digits) == 2
    broken = well_read[5][0].copy()
    broken[13:15] = 0  # a gap across the middle: two pieces, one above the other
    image, _ = compose([well_read[1][0], broken, well_read[3][0]])
    answer = read_number(model, image)
    assert len(answer.digits) == 3 and answer.number[1] == "5", answer.number


def test_a_decimal_point_is_read_and_specks_are_not(model, well_read):
    image, _ = compose([well_read[1][0], well_read[2][0], well_read[5][0], well_read[0][0]], point_after=1)
    clean = read_number(model, image)
    assert (clean.number, clean.verdict, clean.digits[2].verdict) == ("12.50", "sure", "point")
    grey = np.asarray(image).copy()
    rng = np.random.default_rng(0)
    for _ in range(25):  # specks in the paper, none on the baseline between digits
        y, x = rng.integers(0, 12), rng.integers(0, grey.shape[1] - 2)
        grey[y : y + 2, x : x + 2] = 0
    plain, _ = compose([well_read[1][0], well_read[2][0], well_read[5][0], well_read[0][0]])
    speckled = read_number(model, Image.fromarray(grey))
    assert speckled.number == "12.50"
    # Among a scan's specks, a dot on the baseline may be one of them: read, but not sure.
    assert (speckled.verdict, speckled.digits[2].verdict, speckled.unsure) == ("not sure", "not sure", [2])
    assert read_number(model, plain).number == "1250"


def test_short_marks_apart_from_the_digits_are_not_digits(model, well_read):
    """A photo's page edge (a short line along the border) or a stray dash far from any digit is no
    digit; a short part beside its digit (a 5's flag, drawn apart) still counts with it."""
    image, spans = compose([well_read[3][0], well_read[7][0], well_read[1][0]])
    grey = np.asarray(image).copy()
    grey[60:78, 0:3] = 0  # the page's edge at the left border, under a third of a digit high
    grey[0:3, spans[1][0] : spans[1][0] + 20] = 0  # a dash along the top edge, over the 7
    assert read_number(model, Image.fromarray(grey)).number == "371"
    assert read_number(model, image).number == "371"


def test_a_digit_far_lower_than_the_others_is_read_but_not_sure(model, well_read):
    """A 1's flag drawn apart reads as a sure 1 on its own: a digit under LOW line heights is never
    "sure", the same digits at full height are."""
    digits = [well_read[4][0], well_read[2][0], well_read[0][0]]
    assert read_number(model, compose(digits)[0]).verdict == "sure"
    small = np.zeros((28, 28), np.uint8)
    small[12:26, 7:21] = np.asarray(Image.fromarray(digits[2]).resize((14, 14), Image.Resampling.BILINEAR))
    low = read_number(model, compose(digits[:2] + [small])[0])  # the last one written at half height, on the line
    assert low.number == "420", low.number
    assert low.digits[2].verdict == "not sure" and low.unsure == [2] and low.verdict == "not sure"
    assert [d.verdict for d in low.digits[:2]] == ["sure", "sure"]


def test_a_1_far_taller_than_the_other_digits_is_read_but_not_sure(model, well_read):
    """A form's wall that a scan cut off from its lines reads as a sure 1 on its own; it stands far
    taller than the writing, and a 1 TALL times as high as the other digits is never "sure"."""
    image, spans = compose([well_read[4][0], well_read[2][0]], height=160)
    grey = np.asarray(image).copy()
    grey[8:152, spans[-1][1] + 20 : spans[-1][1] + 25] = 0  # 144 px high, the digits 84
    answer = read_number(model, Image.fromarray(grey))
    assert answer.number == "421", answer.number
    assert [d.verdict for d in answer.digits] == ["sure", "sure", "not sure"] and answer.unsure == [2]


def test_a_sheet_photographed_on_a_desk_reads_as_the_sheet_alone(model, well_read):
    """A photo from further away: the sheet with the number in the middle of a darker desk. The desk
    and the sheet's edge are not ink (a sheet that fills a third of the photo or more)."""
    number, _ = compose([well_read[7][0], well_read[3][0], well_read[9][0]])
    sheet = np.pad(np.asarray(number), 80, constant_values=255)
    # The desk around the sheet, and how dark: a wooden desk is about half as light as the paper,
    # and a sheet under half of the photo leaves the desk as its commonest grey.
    for margin, desk in ((60, 70), (40, 20), (40, 125), (100, 125)):
        grey = np.full((sheet.shape[0] + 2 * margin, sheet.shape[1] + 2 * margin), desk, np.uint8)
        grey[margin:-margin, margin:-margin] = sheet
        answer = read_number(model, Image.fromarray(grey))
        assert answer.number == "739", (margin, answer.number)
        assert all(margin - 3 <= d.box[0] and d.box[0] + d.box[2] <= grey.shape[1] - margin + 3 for d in answer.digits)


def test_a_photo_mostly_under_a_deep_shadow_keeps_its_writing(model, well_read):
    """A shadow over three quarters of the paper, at half its light, is darker than the paper as a
    desk is, but it has writing in it: it is flattened, not taken for the desk under the sheet."""
    image, _ = compose([well_read[5][0], well_read[0][0], well_read[8][0]])
    grey = np.asarray(image).astype(np.float32) * (230 / 255)  # paper, not a white screen
    shade = np.ones(grey.shape[1], np.float32)
    shade[: grey.shape[1] * 3 // 4] = 0.5
    grey *= ndimage.gaussian_filter1d(shade, 8)  # a shadow's soft edge
    assert read_number(model, Image.fromarray(grey.astype(np.uint8))).number == "508"


def test_a_number_written_small_in_a_large_photo_is_read_from_a_closer_look(model, well_read):
    """A 3000x2000 photo of a sheet with a number about 40 px high on it: reduced to be read, its
    digits are 5 px high; the reader looks again at the region around them, from the file itself,
    and gives the boxes in the photo's own pixels."""
    from digitkit.predict.numbers import _read_line, zoom_region

    number, spans = compose([well_read[2][0], well_read[0][0], well_read[2][1], well_read[6][0]])
    small = number.resize((number.width * 6 // 10, number.height * 6 // 10), Image.Resampling.LANCZOS)
    photo = Image.new("L", (3000, 2000), 235)
    photo.paste(small, (1400, 900))
    data = io.BytesIO()
    photo.save(data, "PNG")
    image = load_image(data.getvalue())
    first = _read_line(model, image)
    assert image.width <= 384 and zoom_region(first, image.width) is not None, first.number
    answer = read_number(model, image)
    assert answer.number == "2026" and answer.size == (3000, 2000)
    for digit, (left, right) in zip(answer.digits, spans):
        assert abs(digit.box[0] - (1400 + left * 0.6)) <= 8 and abs(digit.box[0] + digit.box[2] - (1400 + right * 0.6)) <= 8
        assert 900 <= digit.box[1] <= 930
    # A photo as large as the number is read once: nothing to look closer at.
    assert zoom_region(read_number(model, number), number.width) is None
    # A phone stores a photo taken upright as it lay on the sensor, with an EXIF orientation: read
    # upright, the closer look included, boxes in the upright photo's pixels.
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to show
    sideways = io.BytesIO()
    photo.convert("RGB").transpose(Image.Transpose.ROTATE_90).save(sideways, "JPEG", quality=92, exif=exif)
    upright = read_number(model, load_image(sideways.getvalue()))
    assert upright.number == "2026" and upright.size == (3000, 2000)
    moved = [max(abs(a.box[0] - b.box[0]), abs(a.box[1] - b.box[1])) for a, b in zip(upright.digits, answer.digits)]
    assert len(moved) == 4 and max(moved) <= 8, moved


def test_ruled_paper_is_not_ink_and_a_thin_straight_one_is(model, well_read):
    """Thin lines across the whole image (ruled or squared paper) are not digits; a 1 drawn as a thin
    straight bar in a tightly cropped number is, though it spans most of the image's height."""
    image, _ = compose([well_read[2][0], well_read[4][0], well_read[7][0]])
    assert read_number(model, image).number == "247"
    grey = np.asarray(image).copy()
    rows, columns = [12, 50, 88, 126], slice(None, None, 45)
    grey[rows, :] = np.minimum(grey[rows, :], 120)  # ruled: grey rows across the whole sheet, under the ink
    grey[:, columns] = np.minimum(grey[:, columns], 120)  # squared: columns from top to bottom
    assert read_number(model, Image.fromarray(grey)).number == "247"
    tight = np.full((120, 300), 255, np.uint8)
    yy, xx = np.mgrid[0:120, 0:300]
    ring = np.hypot((xx - 130) / 30, (yy - 60) / 50)
    tight[(ring <= 1) & (ring >= 0.92)] = 0
    tight[10:110, 40:43] = tight[10:110, 200:203] = 0  # two 1s, 3 px wide, 100 of the 120 px high
    answer = read_number(model, Image.fromarray(tight))
    assert answer.number == "101", answer.number


def in_form(image: Image.Image, spans, form: str, bottom: int = 108) -> Image.Image:
    """The composed digits in a form's field, printed grey 2 px wide: a line under them from row
    ``bottom``, and a box round them, a comb of one box a digit, or a comb's ticks."""
    grey = np.asarray(image).copy()
    left, right = spans[0][0] - 16, spans[-1][1] + 16
    walls = [left] + [(a[1] + b[0]) // 2 for a, b in zip(spans, spans[1:])] + [right]
    grey[bottom : bottom + 2, left:right] = 90  # the field's line, under the digits
    if form in ("box", "comb"):
        grey[8:10, left:right] = 90
        for x in walls if form == "comb" else walls[:: len(walls) - 1]:
            grey[8 : bottom + 2, x : x + 2] = 90
    if form == "ticks":
        for x in walls:
            grey[bottom - 24 : bottom + 2, x : x + 2] = 90
    return Image.fromarray(grey)


@pytest.mark.parametrize("form", ["underline", "box", "comb", "ticks"])
def test_a_number_written_in_a_form_s_field_is_read_without_its_lines(model, well_read, form):
    """A form's printed lines around the writing (shorter than the image: its margin shows) are not
    digits: an underline, a box round the field, a comb of one box a digit, a comb's ticks."""
    image, spans = compose([well_read[2][0], well_read[0][1], well_read[4][0], well_read[7][0]], gap=30)
    assert read_number(model, in_form(image, spans, form)).number == "2047"
    assert read_number(model, Image.fromarray(np.asarray(image))).number == "2047"  # the same without


@pytest.mark.parametrize("angle", [-6, 4])
def test_a_form_photographed_turned_a_few_degrees_is_read_without_its_lines(model, well_read, angle):
    """A photo is rarely square to the form: its lines are found on the ink sheared straight."""
    image, spans = compose([well_read[2][0], well_read[0][1], well_read[4][0], well_read[7][0]], gap=30, height=160)
    turned = in_form(image, spans, "comb", bottom=110).rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=250)
    assert read_number(model, turned).number == "2047"


def test_a_digit_standing_on_an_underline_stays(model, well_read):
    """A 1 whose foot touches the line meets it with one end only and is taller than a comb's tick."""
    image, spans = compose([well_read[1][0], well_read[2][0], well_read[7][0]], gap=30)
    grey = np.asarray(image).copy()
    bottom = int(np.flatnonzero((grey < 128).any(1))[-1])
    grey[bottom - 1 : bottom + 1, 10:-10] = np.minimum(grey[bottom - 1 : bottom + 1, 10:-10], 90)
    answer = read_number(model, Image.fromarray(grey))
    assert answer.number == "127", answer.number


def test_a_wavy_line_drawn_under_the_number_is_not_a_digit(model, well_read):
    """A hand-drawn underline (not straight enough to be a printed line) is flatter than any digit
    and wider than two side by side: dropped, not joined to the digits above it."""
    image, spans = compose([well_read[2][0], well_read[0][1], well_read[4][0], well_read[7][0]], gap=30)
    bottom = int(np.flatnonzero((np.asarray(image) < 128).any(1))[-1])
    drawn = image.copy()
    points = [(x, bottom + 10 + 4 * np.sin(x / 25)) for x in range(spans[0][0] - 10, spans[-1][1] + 10, 4)]
    ImageDraw.Draw(drawn).line(points, fill=20, width=5)
    assert read_number(model, image).number == "2047"
    assert read_number(model, drawn).number == "2047"


def test_a_stroke_written_along_a_line_is_not_cut_in_two():
    """A bold stroke lying on a form's line (a 2's base on its underline) keeps the line's pixels
    under it; the rest of the line goes."""
    from digitkit.predict.ink import line_ink

    grey = np.full((120, 400), 250, np.uint8)
    grey[20:100, 60:70] = grey[20:100, 330:340] = 20  # two tall strokes: the writing's height
    grey[88:94, 20:380] = 90  # the line, 6 px (a scan's jagged lines are that thick)
    grey[83:99, 150:230] = 20  # a bold stroke, 16 px, lying along it
    ink = line_ink(Image.fromarray(grey))
    assert not ink[88:94, 30:55].any() and not ink[88:94, 240:320].any()  # the line is gone
    stroke = ink[80:100, 140:240] > 0
    assert ndimage.label(stroke)[1] == 1 and stroke[83:99, 150:230].all()


class EquallySure:
    """A model that reads anything as an 8 with probability 0.97: a pair read as one digit is then
    exactly as sure as each digit alone, and only the reader's weighing decides."""

    labels = [str(d) for d in range(10)]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        probs = np.full((len(batch), 10), 0.03 / 9, np.float32)
        probs[:, 8] = 0.97
        return probs


def test_two_digits_read_surely_are_not_joined_into_one_read_as_surely():
    grey = np.full((120, 200), 255, np.uint8)
    for left in (40, 84):  # two rings 80 px high, 40 wide, 4 px apart: close enough to be parts of one digit
        grey[20:100, left : left + 40] = 0
        grey[30:90, left + 10 : left + 30] = 255
    answer = read_number(EquallySure(), Image.fromarray(grey))
    assert answer.number == "88", answer.number


class ReadsNarrowInputsAt:
    """A model that reads a narrow input (one digit) as an 8 with probability ``sure``, and a wide
    one (two digits fitted as one) as nothing (a tenth for each class)."""

    labels = [str(d) for d in range(10)]

    def __init__(self, sure: float):
        self.sure = sure

    def predict(self, batch: np.ndarray) -> np.ndarray:
        top = np.where((batch > 0).any(1).sum(1) >= 16, 0.1, self.sure)
        probs = np.repeat(((1 - top) / 9)[:, None], 10, axis=1)
        probs[:, 8] = top
        return probs.astype(np.float32)


def test_touching_digits_narrower_than_the_line_is_high_are_cut():
    """Two narrow digits touching make a piece under the line's height across (0.95 of it): cut
    when the halves read as sure digits and surer than the whole; kept whole, and sure, when not."""
    grey = np.full((120, 200), 255, np.uint8)
    for left in (40, 78):  # two rings 80 px high and 38 wide, touching
        grey[20:100, left : left + 38] = 0
        grey[30:90, left + 10 : left + 28] = 255
    assert len(read_number(ReadsNarrowInputsAt(0.99), Image.fromarray(grey)).digits) == 2
    # halves surer than the whole but not sure digits: a broken stroke more likely than two digits
    assert len(read_number(ReadsNarrowInputsAt(0.9), Image.fromarray(grey)).digits) == 1
    # one digit that wide, which reads as surely whole as cut, stays whole and sure
    answer = read_number(EquallySure(), Image.fromarray(grey))
    assert (answer.number, answer.verdict) == ("8", "sure")


def test_a_short_mark_that_joins_no_digit_is_no_digit():
    """A short tick beside a digit (a 5's flag drawn apart, a scanner's blot) is kept to be joined;
    when the digit reads better without it, it is left on its own, and dropped."""
    grey = np.full((120, 200), 255, np.uint8)
    grey[20:100, 40:92] = 0  # a ring 80 px high and 52 wide
    grey[30:90, 50:82] = 255
    grey[24:44, 98:104] = 0  # a tick a quarter of its height, 6 px to its right: together, wide
    assert read_number(ReadsNarrowInputsAt(0.99), Image.fromarray(grey)).number == "8"


def test_hundreds_of_marks_are_refused_before_any_quadratic_search(model, monkeypatch):
    """Dust or printed text: every step that compares pieces pairwise (grouping, the neighbour test)
    runs on a bounded number of them, and the image is refused."""
    from digitkit.predict import numbers

    searched = []
    real = numbers._has_neighbour
    monkeypatch.setattr(numbers, "_has_neighbour", lambda unit, units, height: searched.append(len(units)) or real(unit, units, height))
    grey = np.full((200, 2400), 255, np.uint8)
    grey[60:140, 0:4] = 0  # one tall stroke sets the line's height
    for i in range(2, 600):
        grey[110:130, 4 * i : 4 * i + 2] = 0  # 598 short marks (long ones would be a ruled page's lines)
    with pytest.raises(NormalizeError, match="599 candidate digits"):
        read_number(model, Image.fromarray(grey))
    assert max(searched, default=0) <= numbers.MAX_PARTS * numbers.MAX_DIGITS


def test_empty_image_and_too_many_candidates(model):
    empty = read_number(model, Image.new("L", (300, 100), 240))
    assert empty.number == "" and empty.verdict == "no digits found" and "no digits" in empty.message
    dots = Image.new("L", (380, 120), 255)
    grey = np.asarray(dots).copy()
    for i in range(40):
        grey[40:80, 5 + 9 * i : 9 + 9 * i] = 0  # forty bars: not a number
    with pytest.raises(NormalizeError, match="more than a number of 32"):
        read_number(model, Image.fromarray(grey))


def test_boxes_are_in_the_uploaded_image_pixels(model, well_read, tmp_path):
    """A large photo is reduced before reading: its boxes are scaled back to its own pixels."""
    image, spans = compose([well_read[3][0], well_read[8][0]], gap=30)
    big = image.resize((image.width * 4, image.height * 4))
    big.save(tmp_path / "big.png")
    answer = read_number(model, load_image(tmp_path / "big.png"))
    assert answer.size == big.size and len(answer.digits) == 2
    assert abs(answer.digits[1].box[0] - 4 * spans[1][0]) <= 12


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def test_the_api_and_the_command_read_numbers(model, well_read, onnx_model, tmp_path, capsys):
    image, _ = compose([well_read[9][0], well_read[1][0], well_read[4][0]])
    client = TestClient(create_app(model))
    body = client.post("/api/read", files={"file": ("n.jpg", png(image.convert("RGB"), "JPEG"), "image/jpeg")}).json()
    assert body["number"] == "914" and len(body["digits"]) == 3 and body["width"] == image.width
    assert all(len(d["box"]) == 4 for d in body["digits"])
    assert client.post("/api/read", files={"file": ("x.png", b"not an image", "image/png")}).status_code == 415
    assert client.post("/api/read", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    huge = b"0" * (13 * 1024 * 1024)
    assert client.post("/api/read", content=huge, headers={"content-type": "multipart/form-data; boundary=b"}
                       ).status_code == 413
    assert "/api/read" in client.get("/openapi.json").json()["paths"]

    image.save(tmp_path / "a.png")
    (tmp_path / "numbers.csv").write_text("file,number\na.png,914\n")
    assert main(["read", str(onnx_model), str(tmp_path), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["number"] == "914" and row["correct"] is True and len(row["digits"]) == 3
    assert main(["read", str(onnx_model), str(tmp_path)]) == 0
    assert "Whole numbers right: 1/1" in capsys.readouterr().out
