"""The Swift side, run: the package's own tests (`swift test`: the preprocessing and thickening
vectors, the verdicts, the number reader), and two differential tests: the Swift normalisation
against ``digitkit.data.normalize`` on a few hundred generated drawings of every kind, and the Swift
number reader against ``digitkit.predict.numbers`` on a few hundred images of numbers (drawn,
photographed, scanned, touching, with decimal points and specks, empty), both with one stand-in model.

Without a toolchain these skip locally, saying why; in CI (CI=true) a missing toolchain fails."""

import importlib.util
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from digitkit.data import handwriting as hw
from digitkit.data.handwriting import pendigits, shapes
from digitkit.data.normalize import BlankImage, normalize
from digitkit.predict.numbers import NormalizeError, read_number, zoom_region

PACKAGE = Path(__file__).parents[1] / "apps" / "ios" / "DigitNormalizer"
SWIFT = shutil.which("swift")


@pytest.fixture(scope="module")
def swift():
    if SWIFT is None:
        if os.environ.get("CI"):
            pytest.fail("no Swift toolchain on PATH: CI must run the Swift tests (.ci/run puts /opt/swift/usr/bin on PATH)")
        pytest.skip("needs a Swift toolchain (swift.org); CI runs these")
    return SWIFT


def test_swift_package_passes(swift):
    out = subprocess.run([swift, "test"], cwd=PACKAGE, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for suite in ("VectorTests", "ThickeningTests", "VerdictTests", "AppStateTests", "NumberReaderTests"):
        assert f"Test Suite '{suite}' passed" in out.stdout, suite


def drawings(count_per_kind: int = 30, seed: int = 0):
    """(kind, RGBA image) for every kind of input the app and the page meet, at most 384 px a side
    (larger images are reduced by load_image first, which the app does not need)."""
    rng = np.random.default_rng(seed)
    styles = [hw.style_strokes(s) for styles in hw.STYLES.values() for s in styles.values()]
    pen = pendigits.read_pendigits()[::50]
    for i in range(count_per_kind):
        yield "skeleton drawn", hw.drawing(styles[int(rng.integers(len(styles)))], rng)
        yield "real pen digit", pendigits.render(pen[int(rng.integers(len(pen)))], rng)
        yield "non-digit", hw.drawing(shapes.shape_strokes(list(shapes.SHAPES)[i % len(shapes.SHAPES)], rng), rng)
        yield "dot", shapes.dot(rng)
        thin = hw.pen_digit(styles[int(rng.integers(len(styles)))], rng,
                            hw.Writer.draw(rng, pen=(0.005, 0.02)), height=float(rng.uniform(60, 300)))
        yield "thin strokes", hw.canvas_image(thin, rng)
        thick = hw.pen_digit(styles[int(rng.integers(len(styles)))], rng, hw.Writer.draw(rng, pen=(0.2, 0.35)))
        yield "thick strokes", hw.canvas_image(thick, rng)
        yield "specks", _with_specks(hw.drawing(styles[int(rng.integers(len(styles)))], rng), rng)
        big = int(rng.integers(300, 385))
        canvas = Image.new("L", (big, big), 255)
        ImageDraw.Draw(canvas).line([(big * 0.3, big * 0.2), (big * 0.7, big * 0.2), (big * 0.4, big * 0.8)],
                                    fill=int(rng.integers(0, 90)), width=int(rng.integers(2, 30)))
        yield "large canvas", canvas
        grey = 230 - 200 * hw.draw_strokes(styles[int(rng.integers(len(styles)))], 60, 4, (80, 80), (10, 10))
        noisy = ndimage.gaussian_filter(grey + rng.normal(0, 6, grey.shape), 0.6)
        yield "scan with noise", Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "L")
        side = int(rng.integers(60, 200))
        form = Image.new("L", (side, side), int(rng.integers(200, 250)))
        draw = ImageDraw.Draw(form)
        inset = int(side * rng.uniform(0.02, 0.1))
        draw.rectangle([inset, inset, side - 1 - inset, side - 1 - inset], outline=int(rng.integers(0, 80)),
                       width=int(rng.integers(1, 4)))
        ink = hw.draw_strokes(styles[int(rng.integers(len(styles)))], side * 0.55, max(1.0, side / 30),
                              (side, side), (side * 0.25, side * 0.2))
        grey = np.asarray(form, np.float32) * (1 - ink) + 30 * ink
        yield "form box", Image.fromarray(grey.astype(np.uint8), "L").rotate(float(rng.normal(0, 2)), fillcolor=240)


def _with_specks(image: Image.Image, rng) -> Image.Image:
    image = image.convert("RGBA")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 8))):
        x, y = rng.integers(0, image.width - 3), rng.integers(0, image.height - 3)
        draw.rectangle([x, y, x + 1, y + 1], fill=(60, 60, 60, 255))
    return image


def centre(image: np.ndarray) -> tuple[float, float]:
    return tuple(float(v) for v in ndimage.center_of_mass(image.astype(np.float64)))


@pytest.fixture(scope="module")
def release(swift) -> Path:
    """The package's command-line tools, built once (release: the differential tests run hundreds of images)."""
    build = subprocess.run([swift, "build", "-c", "release"], cwd=PACKAGE, capture_output=True, text=True, timeout=1200)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return PACKAGE / ".build" / "release"


def raw_images(images) -> bytes:
    return b"".join(struct.pack("<II", im.width, im.height) + im.tobytes() for im in images)


def test_swift_normalisation_matches_python(release):
    binary = release / "normalize-digits"
    cases = [(kind, image.convert("RGBA")) for kind, image in drawings()]
    run = subprocess.run([str(binary)], input=raw_images(im for _, im in cases), capture_output=True, timeout=600)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    out = np.frombuffer(run.stdout, np.uint8).reshape(len(cases), 1 + 28 * 28)
    worst, kinds = 0, set()
    for (kind, image), row in zip(cases, out):
        try:
            expected = normalize(image).image.astype(int)
        except BlankImage:
            assert row[0] == 0, f"{kind}: Swift found a digit where Python found none"
            continue
        assert row[0] == 1, f"{kind}: Swift found no digit"
        got = row[1:].reshape(28, 28).astype(int)
        worst = max(worst, int(np.abs(got - expected).max()))
        assert np.abs(got - expected).max() <= 2, f"{kind}: a pixel differs by {np.abs(got - expected).max()} levels"
        assert np.round(centre(got)).tolist() == np.round(centre(expected)).tolist(), f"{kind}: centre of mass"
        kinds.add(kind)
    assert len(cases) >= 250 and len(kinds) == 10
    print(f"differential test: {len(cases)} drawings of {len(kinds)} kinds, largest pixel difference {worst}")


# -- the number reader ---------------------------------------------------------------------------
class StandIn:
    """A stand-in for the model that both readers run alike: the softmax of a linear map of the
    28×28 input (MNIST's class means as templates), so the cuts are chosen as a model chooses them."""

    labels = [str(d) for d in range(10)]

    def __init__(self, mnist):
        x = mnist.x_train[:6000].reshape(-1, 784).astype(np.float32) / 255
        means = np.stack([x[mnist.y_train[:6000] == k].mean(0) for k in range(10)])
        self.weights = (means * 0.4).astype(np.float32)
        self.biases = (-(means**2).sum(1) * 0.2).astype(np.float32)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        logits = batch.reshape(len(batch), 784).astype(np.float32) / 255 @ self.weights.T + self.biases
        exps = np.exp(logits - logits.max(1, keepdims=True))
        return (exps / exps.sum(1, keepdims=True)).astype(np.float32)

    def save(self, path: Path) -> Path:
        path.write_bytes(self.weights.astype("<f4").tobytes() + self.biases.astype("<f4").tobytes())
        return path


def _benchmark():
    spec = importlib.util.spec_from_file_location("read_numbers", Path(__file__).parents[1] / "benchmarks" / "read_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numbers(per_kind: int = 30, seed: int = 1):
    """(kind, RGBA image) of lines of digits: the benchmark's drawn, photographed and scanned numbers
    (touching and overlapping pairs among them), sheets on desks, photos under a deep shadow, numbers
    in a form's boxes, decimal points, specks, a transparent canvas, light ink on dark, and empty images."""
    bench = _benchmark()
    rng = np.random.default_rng(seed)
    by = bench.held_out_digits()
    for i in range(per_kind):
        ink, _ = bench.drawn_number(by, rng, int(rng.integers(2, 7)))
        yield "drawn", bench.as_drawing(ink, rng)
        yield "photo", bench.as_photo(bench.drawn_number(by, rng, int(rng.integers(2, 6)))[0], rng)
        yield "scan", bench.as_scan(bench.drawn_number(by, rng, int(rng.integers(2, 7)))[0], rng)
        if i % 3 == 1:
            yield "sheet on a desk", bench.as_page_photo(bench.drawn_number(by, rng, int(rng.integers(2, 6)))[0], rng)
        if i % 3 == 2:  # most of the photo under a deep shadow: dark, but paper with writing on it, not a desk
            shaded = np.asarray(bench.as_photo(bench.drawn_number(by, rng, 3)[0], rng).convert("RGB"), np.float32).copy()
            shaded[:, : shaded.shape[1] * 3 // 4] *= 0.5
            yield "deep shadow", Image.fromarray(shaded.astype(np.uint8))
        # In a form's boxes: its lines drawn, scanned (jagged) or photographed (turned); a generator
        # of their own, so the other kinds' images stay the ones they were.
        forms = np.random.default_rng([seed, i])
        form, _ = bench.form_number(by, forms, int(forms.integers(2, 6)))
        yield "form", (bench.as_drawing, bench.as_scan, bench.as_photo)[i % 3](form, forms)
        yield "touching", bench.as_drawing(_touching(bench, by, rng), rng)
        whole, fraction = bench.drawn_number(by, rng, 2)[0], bench.drawn_number(by, rng, 2)[0]
        dot = np.zeros((whole.shape[0], int(bench.HEIGHT * 0.35)), np.float32)
        side = int(rng.integers(7, 14))
        dot[int(bench.HEIGHT * 1.5) - side : int(bench.HEIGHT * 1.5), 8 : 8 + side] = 1
        yield "decimal point", bench.as_drawing(np.hstack([whole, dot, fraction]), rng)
        specked = ink.copy()
        specked[rng.random(ink.shape) < 0.0005] = 1
        yield "specks", bench.as_drawing(specked, rng)
        canvas = np.zeros(ink.shape + (4,), np.uint8)
        canvas[..., 3] = (np.clip(ink, 0, 1) * 255).astype(np.uint8)
        yield "transparent canvas", Image.fromarray(canvas, "RGBA")
        yield "light on dark", Image.fromarray((20 + 220 * np.clip(ink, 0, 1)).astype(np.uint8))
        if i % 3 == 0:
            yield "empty", Image.new("L", (int(rng.integers(40, 300)), int(rng.integers(40, 200))), int(rng.integers(0, 256)))


def _touching(bench, by, rng) -> np.ndarray:
    """Two or three digits, written with one pen, pushed together until their ink touches or overlaps."""
    pen = rng.uniform(*bench.PEN)
    inks = [bench.digit_ink(by[key][0], rng, pen) for key in [list(by)[int(k)] for k in rng.integers(0, len(by), 3)]]
    height = max(i.shape[0] for i in inks) + 40
    canvas = np.zeros((height, sum(i.shape[1] for i in inks) + 40), np.float32)
    x = 20
    for ink in inks:
        region = canvas[20 : 20 + ink.shape[0], x : x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        x += ink.shape[1] - int(rng.integers(0, 8))
    return canvas


def _python_reading(model, image: Image.Image) -> dict:
    image.info.pop("full_size", None)  # the boxes in the pixels both readers see
    image.info.pop("source", None)  # and no closer look at the file (the zoom region is compared instead)
    try:
        answer = read_number(model, image)
    except NormalizeError as err:
        return {"error": str(err)}
    return {"number": answer.number, "verdict": answer.verdict, "zoom": zoom_region(answer, image.width), "digits": [
        {"label": d.label, "verdict": d.verdict, "box": list(d.box),
         "input": None if d.input is None else d.input.reshape(-1).tolist()} for d in answer.digits]}


def test_swift_number_reader_matches_python(release, mnist, tmp_path):
    model = StandIn(mnist)
    cases = [(kind, image.convert("RGBA")) for kind, image in numbers()]
    run = subprocess.run([str(release / "read-numbers"), str(model.save(tmp_path / "stand-in.bin"))],
                         input=raw_images(im for _, im in cases), capture_output=True, timeout=600)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    swift_readings = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert len(swift_readings) == len(cases)
    worst_box = worst_pixel = digits = zooms = 0
    for n, ((kind, image), got) in enumerate(zip(cases, swift_readings)):
        expected = _python_reading(model, image)
        where = f"image {n} ({kind}, {image.width}x{image.height})"
        if "error" in expected:
            assert got.get("error") == expected["error"], where
            continue
        assert (got["number"], got["verdict"]) == (expected["number"], expected["verdict"]), where
        zoom = got.get("zoom") and tuple(got["zoom"][k] for k in ("x", "y", "width", "height"))
        assert zoom == expected["zoom"], where
        zooms += expected["zoom"] is not None
        assert len(got["digits"]) == len(expected["digits"]), where
        for mine, theirs in zip(got["digits"], expected["digits"]):
            assert (mine["label"], mine["verdict"]) == (theirs["label"], theirs["verdict"]), where
            box = [mine["box"][k] for k in ("x", "y", "width", "height")]
            worst_box = max(worst_box, int(np.abs(np.subtract(box, theirs["box"])).max()))
            if theirs["input"] is not None:
                worst_pixel = max(worst_pixel, int(np.abs(np.subtract(mine["input"], theirs["input"])).max()))
                digits += 1
        assert worst_box <= 1 and worst_pixel <= 1, f"{where}: box {worst_box} px, pixel {worst_pixel} levels"
    kinds = {kind for kind, _ in cases}
    assert len(cases) >= 290 and len(kinds) == 12 and digits > 500 and zooms >= 5
    print(f"number reader differential test: {len(cases)} images of {len(kinds)} kinds, {digits} digits, "
          f"largest box difference {worst_box} px, largest pixel difference {worst_pixel}, {zooms} zoom regions alike")
