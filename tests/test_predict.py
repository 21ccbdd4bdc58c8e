import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from scipy import ndimage

from digitkit.classifier import load_classifier
from digitkit.cli import main
from digitkit.predict import labelled_inputs, read_files, save_inputs
from digitkit.data.normalize import FIELD, NormalizeError, _two_level, find_ink, fit_digit, load_image, normalize

VECTORS = json.loads((Path(__file__).parents[1] / "docs" / "preprocessing_vectors.json").read_text())


@pytest.mark.parametrize("case", VECTORS, ids=[v["name"] for v in VECTORS])
def test_documented_test_vectors(case):
    rgba = np.array(case["rgba"], np.uint8).reshape(case["height"], case["width"], 4)
    image = Image.fromarray(rgba, "RGBA").convert(case["mode"])
    assert normalize(image).image.tolist() == case["expected"]


def digit_image(mnist, i=0, scale=8, invert=True):
    """An MNIST test digit as a large scan: dark ink on white paper."""
    big = Image.fromarray(mnist.x_test[i]).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    return Image.fromarray(255 - np.asarray(big)) if invert else big


def com(image):
    return ndimage.center_of_mass(image.astype(float))


def test_polarity_both_ways_gives_the_same_input(mnist):
    dark_on_light = normalize(digit_image(mnist))
    light_on_dark = normalize(digit_image(mnist, invert=False))
    assert dark_on_light.polarity == "dark-on-light" and light_on_dark.polarity == "light-on-dark"
    assert np.abs(dark_on_light.image.astype(int) - light_on_dark.image.astype(int)).max() <= 1


def test_ink_over_half_of_a_tight_box_is_still_dark_ink_on_paper():
    """A fat 1 stretched to fill its box, as a form processor delivers it: over half the image is
    ink, so the median grey is the ink's; the paper along the edge tells which is which. Before,
    the paper was taken for light ink and the model saw a hollow frame."""
    fat = Image.new("L", (32, 32), 250)
    ImageDraw.Draw(fat).polygon([(12, 0), (31, 0), (31, 6), (20, 31), (0, 31), (0, 24)], fill=10)
    assert (np.asarray(fat) < 128).mean() > 0.5
    out = normalize(fat)
    assert out.polarity == "dark-on-light"
    # The ink is the bar itself: a solid diagonal band, inked through its middle.
    assert out.image[14, 14] > 200 and out.image[4, 4] == out.image[23, 23] == 0
    # The same bitmap as light ink on a dark ground reads the same, with or without ground round it.
    light = normalize(ImageOps.invert(fat))
    assert light.polarity == "light-on-dark" and np.abs(light.image.astype(int) - out.image.astype(int)).max() <= 1
    assert normalize(ImageOps.expand(ImageOps.invert(fat), 8, fill=5)).polarity == "light-on-dark"
    # A dataset's grey bitmap (blurred, 16 px: not two-level) of light ink over half of it is as
    # small as no photo of paper is, so its edge decides too; inverted, it is dark ink again.
    grey = ImageOps.invert(fat).filter(ImageFilter.GaussianBlur(1.5)).resize((16, 16), Image.Resampling.BILINEAR)
    assert not _two_level(np.asarray(grey)) and np.median(np.asarray(grey)) >= 128
    assert normalize(grey).polarity == "light-on-dark" and normalize(ImageOps.invert(grey)).polarity == "dark-on-light"
    # A photo is not a bitmap: a sheet of paper (shaded, over half the photo) with a digit on it,
    # on a dark desk all round the edge, is still dark ink on the paper.
    desk = np.full((60, 60), 40, np.uint8)
    desk[8:52, 8:52] = np.linspace(170, 235, 44)[None, :].astype(np.uint8)
    desk[18:42, 28:33] = 30
    assert normalize(Image.fromarray(desk)).polarity == "dark-on-light"
    # Nor is a photo whose light falls off to a dark edge: the paper reaches every side there.
    yy, xx = np.mgrid[0:200, 0:200]
    dim = 175 - 100 * (np.hypot(yy - 100, xx - 100) / 141) ** 2 + np.random.default_rng(0).normal(0, 6, yy.shape)
    dim[60:140, 95:105] = 40
    dim = np.clip(dim, 0, 255).astype(np.uint8)
    assert np.median(dim[0]) < 128 <= np.median(dim) and normalize(Image.fromarray(dim)).polarity == "dark-on-light"


def test_a_datasets_16_px_bitmap_reads_as_the_same_bitmap_scanned_larger(mnist):
    """A digit smaller than the 20 px box is enlarged by a whole factor before it is fitted, so a
    16x16 bitmap gives what the same pixels at 64x64 give (before, its few pixels were stretched)."""
    for index in range(5):
        digit = digit_image(mnist, index).resize((16, 16), Image.Resampling.BILINEAR).point(lambda v: 255 * (v > 100))
        factor = -(-64 // max(find_ink(digit).ink.shape))  # the whole factor that takes its ink to 64 px
        large = digit.resize((16 * factor, 16 * factor), Image.Resampling.NEAREST)
        np.testing.assert_array_equal(normalize(digit).image, normalize(large).image)
    assert not np.array_equal(fit_digit(find_ink(digit).ink), normalize(digit).image)


def test_output_is_mnist_like(mnist):
    out = normalize(digit_image(mnist, 3)).image
    assert out.shape == (FIELD, FIELD) and out.dtype == np.uint8 and out.max() == 255
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) in (20, 21)  # longer side fitted to 20
    assert np.allclose(com(out), (14, 14), atol=0.5)
    assert out[0].sum() == out[-1].sum() == 0  # a black frame, as in MNIST


def test_rgba_over_transparent_background(mnist):
    digit = np.asarray(digit_image(mnist, 5, invert=False))
    rgba = np.zeros(digit.shape + (4,), np.uint8)
    rgba[..., :3] = (20, 20, 20)  # dark strokes...
    rgba[..., 3] = digit  # ...visible only where drawn
    out = normalize(Image.fromarray(rgba, "RGBA"))
    assert out.polarity == "alpha"
    reference = normalize(Image.fromarray(digit))
    assert np.abs(out.image.astype(int) - reference.image.astype(int)).max() <= 2


def test_off_centre_tiny_digit_on_a_large_non_square_canvas(mnist):
    canvas = Image.new("L", (900, 300), 235)
    canvas.paste(digit_image(mnist, 7, scale=1), (820, 20))  # 28 px digit in a corner
    out = normalize(canvas).image
    assert np.allclose(com(out), (14, 14), atol=0.5)
    rows = np.flatnonzero(out.any(1))
    assert rows[-1] - rows[0] + 1 >= 19  # scaled up to fill the box


def test_aspect_ratio_is_kept():
    image = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(image).line([(150, 40), (150, 260)], fill=0, width=20)  # a tall, thin "1"
    out = normalize(image).image
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert rows[-1] - rows[0] + 1 == 20
    assert cols[-1] - cols[0] + 1 <= 6


def test_noise_and_specks_are_removed(mnist):
    clean = normalize(digit_image(mnist, 2)).image
    noisy = np.asarray(digit_image(mnist, 2), np.float32)
    rng = np.random.default_rng(0)
    noisy = noisy - rng.uniform(0, 40, noisy.shape)  # paper texture
    noisy[5:8, 5:8] = 0  # a speck far from the digit
    out = normalize(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))).image
    assert np.abs(out.astype(int) - clean.astype(int)).mean() < 6
    assert np.allclose(com(out), com(clean), atol=0.6)


@pytest.mark.parametrize("make, message", [
    (lambda p: Image.new("L", (64, 64), 255).save(p), "no digit found"),
    (lambda p: Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(p), "no digit found"),
    (lambda p: p.write_bytes(b"hello, not an image"), "not an image file"),
    (lambda p: p.write_bytes(b""), "not an image file"),
])
def test_bad_images(tmp_path, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(NormalizeError, match=message):
        normalize(load_image(path))


def test_truncated_png(tmp_path, mnist):
    path = tmp_path / "t.png"
    digit_image(mnist).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(NormalizeError, match="unreadable image|not an image"):
        normalize(load_image(path))


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000), 1).save(path)  # 81 MP of nothing: a few KB on disk
    assert path.stat().st_size < 100_000
    with pytest.raises(NormalizeError, match="too large|more than"):
        load_image(path)


@pytest.fixture(scope="module")
def keras_run(trained_run):
    return trained_run


def test_predict_files_reports_errors_per_file(tmp_path, mnist, keras_run):
    digit_image(mnist, 0).save(tmp_path / "a.png")
    digit_image(mnist, 1).convert("RGB").save(tmp_path / "b.jpg")
    Image.new("L", (10, 10), 255).save(tmp_path / "blank.png")
    (tmp_path / "notes.txt").write_text("skip me: not an image suffix")
    paths = [p for p, _ in labelled_inputs([str(tmp_path), str(tmp_path / "missing.png")])]
    assert [p.name for p in paths] == ["a.png", "b.jpg", "blank.png", "missing.png"]
    answers = read_files(load_classifier(keras_run.path), paths, top=3)
    save_inputs(paths, answers, tmp_path / "seen")
    assert [isinstance(a, str) for a in answers] == [False, False, True, True]
    first = answers[0]
    assert first.label in "0123456789" and len(first.probabilities) == 10
    assert sum(first.probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert first.confidence == max(first.probabilities.values())
    assert len(first.top) == 3
    saved = np.asarray(Image.open(tmp_path / "seen" / "a.png"))
    assert saved.shape == (28, 28)


def test_cli_predict_json_and_exit_status(tmp_path, mnist, keras_run, capsys):
    for i in range(3):
        digit_image(mnist, i).save(tmp_path / f"{i}.png")
    assert main(["predict", str(keras_run.path), str(tmp_path / "*.png"), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["file"]).name for r in lines] == ["0.png", "1.png", "2.png"]
    assert {"file", "label", "confidence", "probabilities"} <= set(lines[0])
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert main(["predict", str(keras_run.path), str(tmp_path)]) == 1
    assert "not an image file" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "no-model"), str(tmp_path)]) == 2


def test_a_folder_of_class_folders_is_read_as_labelled(tmp_path, mnist, keras_run, capsys):
    """The layout `train --data` takes: every image of every class folder, with its expected class,
    and how many each class got right (a folder of images of its own is still read as before)."""
    for i in range(6):
        folder = tmp_path / "mine" / str(int(mnist.y_test[i]))
        folder.mkdir(parents=True, exist_ok=True)
        digit_image(mnist, i).save(folder / f"{i}.png")
    assert main(["predict", str(keras_run.path), str(tmp_path / "mine"), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 6 and all(r["expected"] == Path(r["file"]).parent.name for r in rows)
    assert all(r["correct"] == (r["label"] == r["expected"]) for r in rows)
    assert all(r["verdict"] in ("sure", "not sure", "not a class") for r in rows)
    assert main(["predict", str(keras_run.path), str(tmp_path / "mine")]) == 0
    out = capsys.readouterr().out
    right = sum(r["correct"] for r in rows)
    assert f"Right: {right}/6" in out and "per class:" in out
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(keras_run.path), str(tmp_path / "empty")]) == 2
    assert "no image files" in capsys.readouterr().err


def test_evaluate_scores_a_run_on_any_labelled_folder(tmp_path, mnist, keras_run, capsys):
    for i in range(20):
        folder = tmp_path / "mine" / str(int(mnist.y_test[i]))
        folder.mkdir(parents=True, exist_ok=True)
        digit_image(mnist, i).save(folder / f"{i}.png")
    assert main(["evaluate", str(keras_run.path), "--data", str(tmp_path / "mine"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_test"] == 20 and 0.5 < report["test_accuracy"] <= 1
    assert (keras_run.path / "evaluation-mine.json").is_file() and (keras_run.path / "confusion_matrix-mine.png").is_file()
    (tmp_path / "mine" / "cat").mkdir()
    digit_image(mnist, 0).save(tmp_path / "mine" / "cat" / "x.png")
    assert main(["evaluate", str(keras_run.path), "--data", str(tmp_path / "mine")]) == 2
    assert "not classes of the model" in capsys.readouterr().err


def test_exported_models_predict_like_keras(tmp_path, mnist, keras_run):
    from digitkit.export import export

    for i in range(4):
        digit_image(mnist, i).save(tmp_path / f"{i}.png")
    paths = [p for p, _ in labelled_inputs([str(tmp_path)])]
    reference = read_files(load_classifier(keras_run.model_path), paths)
    for fmt in ("onnx", "coreml"):
        model = export(keras_run.path, fmt)
        answers = read_files(load_classifier(model), paths)
        assert [a.label for a in answers] == [a.label for a in reference]
        for a, ref in zip(answers, reference):
            assert a.confidence == pytest.approx(ref.confidence, abs=1e-4)
