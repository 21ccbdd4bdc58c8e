"""Your own classes: a folder of images → train → evaluate → export → verify → predict → serve, with
the folder's class names all the way through; the decode cache; every bad folder explained."""

import json
import string

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont

from digitkit import DigitkitError
from digitkit.data.folders import load_folder


def shape_image(kind: str, rng: np.random.Generator) -> Image.Image:
    """A hand-drawn-looking circle, square or triangle: any size, place, pen and polarity."""
    size = int(rng.integers(48, 200))
    dark = rng.random() < 0.7
    image = Image.new("L", (size, size), 255 if dark else 0)
    draw = ImageDraw.Draw(image)
    lo, hi = size * rng.uniform(0.1, 0.3), size * rng.uniform(0.7, 0.9)
    pen = max(1, int(size * rng.uniform(0.03, 0.1)))
    ink = 0 if dark else 255
    jitter = lambda: rng.uniform(-0.05, 0.05) * size  # noqa: E731
    if kind == "circle":
        draw.ellipse([lo + jitter(), lo + jitter(), hi + jitter(), hi + jitter()], outline=ink, width=pen)
    elif kind == "square":
        corners = [(lo, lo), (hi, lo), (hi, hi), (lo, hi), (lo, lo)]
        draw.line([(x + jitter(), y + jitter()) for x, y in corners], fill=ink, width=pen, joint="curve")
    else:
        corners = [((lo + hi) / 2, lo), (hi, hi), (lo, hi), ((lo + hi) / 2, lo)]
        draw.line([(x + jitter(), y + jitter()) for x, y in corners], fill=ink, width=pen, joint="curve")
    return image


def make_shapes(root, per_class=24, seed=0):
    rng = np.random.default_rng(seed)
    for kind in ("circle", "square", "triangle"):
        (root / kind).mkdir(parents=True)
        for n in range(per_class):
            shape_image(kind, rng).save(root / kind / f"{n:03d}.png")
    return root


def make_letters(root, per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    for letter in string.ascii_uppercase:
        (root / letter).mkdir(parents=True)
        for n in range(per_class):
            size = int(rng.integers(40, 90))
            font = ImageFont.load_default(size=size * 0.8)
            image = Image.new("L", (size, size), 255)
            ImageDraw.Draw(image).text((size * rng.uniform(0.1, 0.3), size * rng.uniform(0.0, 0.1)), letter, font=font,
                                       fill=0)
            image.rotate(rng.uniform(-10, 10), fillcolor=255).save(root / letter / f"{n}.png")
    return root


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes")


@pytest.fixture(scope="module")
def shapes_run(shapes, tmp_path_factory, monkeypatch_module):
    from digitkit.train import TrainConfig, train

    config = TrainConfig.from_preset("fast", data=str(shapes), epochs=3, name="shapes",
                                     runs_dir=str(tmp_path_factory.mktemp("runs")))
    return train(config, quiet=True)


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory):
    """Keep the decode cache of these tests out of the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield mp
    mp.undo()


def test_three_classes_end_to_end(shapes_run, shapes, tmp_path):
    from digitkit.classifier import load_classifier
    from digitkit.evaluate import evaluate_run
    from digitkit.export import export
    from digitkit.predict import read_files
    from digitkit.serve import create_app, load_served_model, served_model_path
    from digitkit.verify import verify

    names = ["circle", "square", "triangle"]
    config = json.loads((shapes_run.path / "config.json").read_text())
    assert config["labels"] == names and config["dataset"] == "shapes"
    metrics = json.loads((shapes_run.path / "metrics.json").read_text())
    assert set(metrics["per_class"]) == set(names)
    assert len(metrics["confusion_matrix"]) == 3
    assert metrics["test_accuracy"] >= 0.6  # 3 epochs on 48 training shapes
    _, report = evaluate_run(shapes_run.path)
    assert report["num_test"] == metrics["num_test"] == 9  # the run's own test split: 3 per class

    mlpackage = export(shapes_run.path, "coreml")
    assert mlpackage.name == "ShapesClassifier.mlpackage"
    onnx_path = export(shapes_run.path, "onnx")
    for exported in (mlpackage, onnx_path):
        assert load_classifier(exported).labels == names
        report = verify(exported)
        assert report["passed"] and report["images"] == 9

    answers = read_files(load_classifier(mlpackage), [shapes / "circle" / "000.png", shapes / "square" / "001.png"])
    assert {a.label for a in answers} <= set(names) and set(answers[0].probabilities) == set(names)

    client = TestClient(create_app(load_served_model(served_model_path(shapes_run.path))))
    assert client.get("/api/model").json()["labels"] == names
    body = client.post("/api/predict", files={"file": ("c.png", (shapes / "circle" / "002.png").read_bytes(),
                                                       "image/png")}).json()
    assert body["label"] in names and set(body["probabilities"]) == set(names)


def test_twenty_six_classes_end_to_end(tmp_path, monkeypatch):
    from digitkit.classifier import load_classifier
    from digitkit.export import export
    from digitkit.train import TrainConfig, train
    from digitkit.verify import verify

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    letters = make_letters(tmp_path / "letters")
    run = train(TrainConfig.from_preset("fast", data=str(letters), epochs=2, name="letters", runs_dir=str(tmp_path / "runs")),
                quiet=True)
    labels = list(string.ascii_uppercase)
    assert json.loads((run.path / "config.json").read_text())["labels"] == labels
    for fmt in ("coreml", "onnx", "coreml-nn"):
        exported = export(run.path, fmt)
        assert load_classifier(exported).labels == labels
        assert verify(exported)["passed"]


def test_cache_is_reused_and_notices_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = make_shapes(tmp_path / "s", per_class=5)
    first, report = load_folder(root)
    assert (report.decoded, report.reused) == (15, 0)
    again, report = load_folder(root)
    assert (report.decoded, report.reused) == (0, 15)
    assert np.array_equal(first.x_train, again.x_train) and np.array_equal(first.x_test, again.x_test)

    shape_image("square", np.random.default_rng(9)).save(root / "circle" / "000.png")  # changed
    (root / "square" / "004.png").unlink()  # gone
    shape_image("triangle", np.random.default_rng(8)).save(root / "triangle" / "new.png")  # new
    data, report = load_folder(root)
    assert report.decoded == 2 and report.reused == 13
    assert report.counts == {"circle": 5, "square": 4, "triangle": 6}


def test_explicit_train_val_test_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        make_shapes(tmp_path / "d" / split, per_class=n, seed=len(split))
    data, _ = load_folder(tmp_path / "d")
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (18, 6, 9)
    assert data.class_names == ("circle", "square", "triangle")
    (tmp_path / "e" / "train").mkdir(parents=True)
    (tmp_path / "e" / "test").mkdir()
    with pytest.raises(DigitkitError, match="no val"):
        load_folder(tmp_path / "e")


def test_files_that_are_not_images_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = make_shapes(tmp_path / "s", per_class=4)
    (root / "circle" / "notes.txt").write_text("not an image")
    (root / "square" / "broken.png").write_bytes(b"\x89PNG garbage")
    Image.new("L", (30, 30), 255).save(root / "square" / "blank.png")
    (root / "triangle" / "copy.png").write_bytes((root / "circle" / "001.png").read_bytes())
    (root / ".hidden").mkdir()
    data, report = load_folder(root)
    skipped = dict(report.skipped)
    assert set(skipped) == {"circle/notes.txt", "square/broken.png", "square/blank.png"}
    assert "not an image" in skipped["circle/notes.txt"] and "no digit found" in skipped["square/blank.png"]
    assert report.duplicates == [("circle/001.png", "triangle/copy.png")]
    text = "\n".join(report.lines())
    assert "skipped 3 file(s)" in text and "same image in two classes" in text
    assert data.class_names == ("circle", "square", "triangle")


@pytest.mark.parametrize("layout, message", [
    ({}, "is empty"),
    ({"only": 5}, "at least 2"),
    ({"a": 5, "b": 2}, r"b \(2\).*at least 3"),
    ({"a,b": 4, "c": 4}, "not a usable class name"),
    ({" space": 4, "c": 4}, "not a usable class name"),
])
def test_bad_folders(tmp_path, monkeypatch, layout, message):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "d"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name, n in layout.items():
        (root / name).mkdir()
        for i in range(n):
            shape_image("circle", rng).save(root / name / f"{i}.png")
    with pytest.raises(DigitkitError, match=message):
        load_folder(root)
    with pytest.raises(DigitkitError, match="is not a folder"):
        load_folder(tmp_path / "missing")


def test_init_starts_from_a_run(shapes_run, shapes, tmp_path, capsys):
    from digitkit.cli import main
    from digitkit.train import TrainConfig

    config = TrainConfig.from_preset(init=str(shapes_run.path), data=str(shapes))
    assert config.preset == "transfer" and config.model == "digitnet-small"  # the run's own architecture
    assert main(["train", "--data", str(shapes), "--init", str(shapes_run.path), "--epochs", "1", "--name", "ft",
                 "--runs-dir", str(tmp_path)]) == 0
    assert main(["train", "--data", str(shapes), "--init", str(shapes_run.path), "--model", "tutorial",
                 "--runs-dir", str(tmp_path)]) == 2
    assert "--init starts from a digitnet-small run" in capsys.readouterr().err
