"""Handwriting from other writers and drawings that are not digits: the built training set, its
sources, the split between training and benchmark (fonts, pendigits writers, non-digit kinds), the
loss that teaches "no digit", and calibrated probabilities."""

import json

import numpy as np
import pytest
from scipy import ndimage

from digitkit.data import handwriting as hw



@pytest.mark.parametrize("part", list(hw.PARTS))
def test_built_set_is_in_mnists_format(part):
    images, labels = hw.load_part(part)
    assert images.shape[1:] == (28, 28) and images.dtype == np.uint8 and len(images) == len(labels) > 2_000
    if part == "non-digits":
        assert set(np.unique(labels)) == {255}
    else:
        assert set(np.unique(labels)) == set(range(10)) and np.bincount(labels).min() > 150
    sample = images[:: max(1, len(images) // 200)]
    assert (sample.max(axis=(1, 2)) == 255).all()  # stretched to full white, as normalize does
    centres = np.array([ndimage.center_of_mass(i.astype(float)) for i in sample])
    assert np.abs(centres - 14).max() < 1.0  # centred by mass, as MNIST
    sources = json.loads((hw.EXTRA_DIR / "sources.json").read_text())[part]
    assert sources["count"] == len(labels)
    assert sum(sources["per_label"].values()) == len(labels)


def test_pendigits_are_split_by_writer():
    from digitkit.data.handwriting import pendigits

    digits = pendigits.read_pendigits()
    assert len(digits) == 7494 and {d.writer for d in digits} == set(range(30))
    assert all(0 <= d.label <= 9 and d.strokes for d in digits)
    train, calibration, held_out = pendigits.split_by_writer(digits)
    assert len(train) + len(calibration) + len(held_out) == len(digits)
    assert {d.writer for d in held_out} == {24, 25, 26, 27, 28, 29} and {d.writer for d in calibration} == {20, 21, 22, 23}
    # Writers are contiguous blocks in file order: no writer is in both parts.
    assert max(i for i, d in enumerate(digits) if d.writer in pendigits.TRAINING_WRITERS) < \
        min(i for i, d in enumerate(digits) if d.writer not in pendigits.TRAINING_WRITERS)
    built = json.loads((hw.EXTRA_DIR / "sources.json").read_text())["pendigits"]["sources"]
    trained_writers = {int(s.split("writer")[1]) for s in built}
    assert trained_writers == set(range(1, 21))  # calibration writers 21-24 and benchmark writers 25-30: never
    calibrating = json.loads((hw.EXTRA_DIR / "sources.json").read_text())["pendigits-calibration"]["sources"]
    assert {int(s.split("writer")[1]) for s in calibrating} == set(range(21, 25))
    # y grows upwards in the file: a 7's bar is at the top of the drawing (small y once flipped).
    seven = next(d for d in digits if d.label == 7)
    first = seven.strokes[0]
    assert first[0, 1] < np.vstack(seven.strokes)[:, 1].mean()


def test_pen_digits_render_as_drawing_apps_save_them():
    from digitkit.data.handwriting import pendigits

    rng = np.random.default_rng(0)
    modes = set()
    for digit in pendigits.read_pendigits()[:60]:
        image = pendigits.render(digit, rng)
        modes.add(image.mode)
        assert hw.normalized(image) is not None
    assert {"RGBA", "L"} <= modes  # transparent canvases and plain grey images both occur


def test_non_digit_kinds_and_their_split():
    from digitkit.data.handwriting import shapes

    assert len(shapes.TRAINING_KINDS) >= 8 and {"heart", "star", "spiral", "scribble", "letter", "dot"} <= set(shapes.TRAINING_KINDS)
    assert not set(shapes.HELD_OUT_KINDS) & set(shapes.TRAINING_KINDS)
    built = json.loads((hw.EXTRA_DIR / "sources.json").read_text())["non-digits"]["sources"]
    assert set(built) == set(shapes.TRAINING_KINDS)
    assert not set(shapes.LETTERS) & set("0123456789OoIlSsZzBbgqGT")  # no letter a digit resembles
    rng = np.random.default_rng(0)
    for kind in shapes.SHAPES:
        assert hw.normalized(hw.non_digit(kind, rng)) is not None, kind
    assert hw.normalized(shapes.dot(rng)) is not None


def test_a_non_digit_is_taught_as_equal_probabilities():
    import torch

    from digitkit.train.loop import _loss

    uniform = torch.full((1, 10), 0.1)
    sure = torch.tensor([[0.91] + [0.01] * 9])
    no_class = torch.tensor([10])
    assert _loss(uniform, no_class, 0.1) < _loss(sure, no_class, 0.1)  # unsure is right for a non-digit
    assert _loss(sure, torch.tensor([0]), 0.1) < _loss(uniform, torch.tensor([0]), 0.1)
    mixed = _loss(torch.cat([uniform, sure]), torch.tensor([10, 0]), 0.0)
    assert mixed.item() == pytest.approx((-torch.log(uniform).mean() - torch.log(sure[0, 0])).item() / 2, rel=1e-5)


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
            image = hw.normalized(hw.pen_digit(hw.style_strokes(style), rng))
            assert image is not None and image.shape == (28, 28) and image.max() == 255, digit


def test_benchmark_fonts_are_never_trained_on(real_handwriting):
    module = real_handwriting
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
