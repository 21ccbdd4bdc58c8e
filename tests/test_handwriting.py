"""Synthetic handwriting from other writers: the built training set, its sources, the split between
training and benchmark fonts, and calibrated probabilities."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from digitkit.data import handwriting as hw

BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "real_handwriting.py"


def test_built_set_is_in_mnists_format():
    images, labels = hw.load_extra_digits()
    assert images.shape[1:] == (28, 28) and images.dtype == np.uint8 and len(images) == len(labels) > 10_000
    assert set(np.unique(labels)) == set(range(10)) and np.bincount(labels).min() > 800
    sample = images[:: max(1, len(images) // 200)]
    assert (sample.max(axis=(1, 2)) == 255).all()  # stretched to full white, as normalize does
    centres = np.array([ndimage.center_of_mass(i.astype(float)) for i in sample])
    assert np.abs(centres - 14).max() < 1.0  # centred by mass, as MNIST
    sources = json.loads((hw.EXTRA_DIR / "sources.json").read_text())
    assert sources["count"] == len(labels) and sources["per_digit"] == np.bincount(labels).tolist()


def test_the_styles_mnist_lacks_are_there():
    names = {digit: set(styles) for digit, styles in hw.STYLES.items()}
    assert {"crossed", "crossed low"} <= names["7"]
    assert {"flag and foot", "long flag", "long flag and foot"} <= names["1"]
    assert {"open", "one stroke"} <= names["4"]
    assert {"straight tail", "small loop, long tail"} <= names["9"]
    assert "loop" in names["2"]


def test_pen_digits_are_drawn_and_normalised():
    rng = np.random.default_rng(0)
    for digit, styles in hw.STYLES.items():
        for style in styles.values():
            image = hw._normalized(hw.pen_digit(hw.style_strokes(style), rng))
            assert image is not None and image.shape == (28, 28) and image.max() == 255, digit


def test_benchmark_fonts_are_never_trained_on():
    spec = importlib.util.spec_from_file_location("real_handwriting", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not set(module.FONTS) & set(hw.TRAINING_FONTS)
    assert not set(module.HERSHEY) & set(hw.TRAINING_HERSHEY)
    # Different files can hold the same design: the Hershey sets share no digit shapes either.
    if not hw.HERSHEY_ROOT.is_dir():
        pytest.skip("needs hershey-fonts-data")
    shapes = lambda name: tuple(map(tuple, np.vstack(hw.hershey_glyphs(hw.HERSHEY_ROOT / f"{name}.jhf")["7"]).tolist()))  # noqa: E731
    trained = {shapes(name) for name in hw.TRAINING_HERSHEY}
    assert not any(shapes(name) in trained for name in module.HERSHEY)


@pytest.mark.skipif(not (hw.HERSHEY_ROOT / "futural.jhf").is_file(), reason="needs hershey-fonts-data")
def test_hershey_glyphs():
    glyphs = hw.hershey_glyphs(hw.HERSHEY_ROOT / "futural.jhf")
    assert len(glyphs) == 96 and set("0123456789AZaz") <= set(glyphs)
    one = np.vstack(glyphs["1"])
    assert np.ptp(one[:, 1]) > 2 * np.ptp(one[:, 0])  # a 1 is tall and narrow
    box = np.vstack(hw.to_unit_box(glyphs["8"]))
    assert box[:, 1].min() == 0 and box[:, 1].max() == pytest.approx(1)


def test_font_glyphs_skip_missing_characters():
    fonts = hw.font_paths()
    if not fonts:
        pytest.skip("needs the handwriting fonts (see src/digitkit/data/extra/README.md)")
    glyph = hw.font_glyph(fonts[0], "7")
    assert glyph is not None and glyph.max() > 0.5
    assert hw.font_glyph(fonts[0], "\u4e00") is None  # no CJK glyph in a Latin handwriting font
    warped = hw.distort_glyph(glyph, np.random.default_rng(0))
    assert warped.max() > 0.3


def test_training_mixes_in_synthetic_handwriting_and_calibrates(tmp_path, tiny_mnist_dir):
    from digitkit.train import TrainConfig, train

    run = train(TrainConfig.from_preset("fast", limit=800, val_size=200, name="mix", runs_dir=str(tmp_path),
                                        data_dir=str(tiny_mnist_dir)), quiet=True)
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert 0.05 < metrics["temperature"] < 20
    assert 0 <= metrics["expected_calibration_error"] < 0.2
    without = train(TrainConfig.from_preset("fast", limit=800, val_size=200, name="plain", runs_dir=str(tmp_path),
                                            data_dir=str(tiny_mnist_dir), synthetic=0.0, calibrate=False), quiet=True)
    assert json.loads((without.path / "metrics.json").read_text())["temperature"] is None
