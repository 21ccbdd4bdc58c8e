"""The Swift side, run: the package's own tests (`swift test`: the preprocessing and thickening
vectors, the verdicts), and a differential test of the Swift normalisation against
``digitkit.data.normalize`` on a few hundred generated drawings of every kind.

Without a toolchain these skip locally, saying why; in CI (CI=true) a missing toolchain fails."""

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
    for suite in ("VectorTests", "ThickeningTests", "VerdictTests", "AppStateTests"):
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


def test_swift_normalisation_matches_python(swift):
    build = subprocess.run([swift, "build", "-c", "release", "--product", "normalize-digits"], cwd=PACKAGE,
                           capture_output=True, text=True, timeout=1200)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    binary = PACKAGE / ".build" / "release" / "normalize-digits"
    cases = [(kind, image.convert("RGBA")) for kind, image in drawings()]
    stream = b"".join(struct.pack("<II", im.width, im.height) + im.tobytes() for _, im in cases)
    run = subprocess.run([str(binary)], input=stream, capture_output=True, timeout=600)
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
