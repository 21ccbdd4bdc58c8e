"""Hostile and broken inputs against every stage: each ends in a clear message (or a 4xx with one),
never a traceback, and nothing the user had is lost or left half-written."""

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitkit import ConfigError, DigitkitError
from digitkit.cli import main
from digitkit.data.normalize import MAX_PIXELS, WORK_SIZE, BlankImage, NormalizeError, load_image, normalize
from digitkit.predict import Answer, labelled_inputs, read_files, save_inputs


@pytest.fixture(scope="module")
def run(trained_run):
    return trained_run


def png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def thin_drawing(size: int) -> Image.Image:
    image = Image.new("L", (size, size), 255)
    ImageDraw.Draw(image).line([(size * 0.2, size * 0.2), (size * 0.8, size * 0.2), (size * 0.4, size * 0.9)],
                               fill=0, width=1)
    return image


# -- images -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [600, 1200, 4000])
def test_thin_pen_drawings_of_any_size_normalise_with_thickened_strokes(size, monkeypatch):
    from digitkit.data import normalize as module

    image = load_image(png_bytes(thin_drawing(size)))
    thickened = normalize(image).image
    monkeypatch.setattr(module, "THIN_STROKE", 0.0)  # the same drawing, never thickened
    as_drawn = normalize(image).image
    assert thickened.sum() > 1.6 * as_drawn.sum()  # a one-pixel pen ends up about MNIST's stroke width


@pytest.mark.parametrize("make", [
    lambda: Image.new("L", (20000, 1), 0),  # 100-byte PNG that once raised MemoryError
    lambda: Image.new("L", (1, 20000), 255),
    lambda: Image.new("L", (3, 3), 0),
])
def test_extreme_shapes_give_an_answer_or_a_clear_error(make):
    image = make()
    ImageDraw.Draw(image).point([(0, 0)], fill=128)
    try:
        assert normalize(load_image(png_bytes(image))).image.shape == (28, 28)
    except NormalizeError as err:
        assert str(err)


def test_oversized_and_overlong_images_are_refused():
    with pytest.raises(NormalizeError, match="too large"):
        load_image(png_bytes(Image.new("1", (20001, 2), 1)))
    side = int(MAX_PIXELS**0.5) + 10
    with pytest.raises(NormalizeError, match="too large"):
        load_image(png_bytes(Image.new("1", (side, side), 1)))


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F"])
def test_every_image_mode_is_read(mode):
    base = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(base).line([(32, 8), (32, 56)], fill=0, width=6)
    image = base.convert("RGB").convert(mode) if mode not in ("I", "I;16", "F", "1", "LA") else base.convert(mode)
    out = normalize(image).image
    assert out.max() == 255 and (out > 0).sum() > 20


@pytest.mark.parametrize("mode", ["1", "P", "I;16", "LA", "RGBA"])
def test_large_images_of_every_mode_read_like_grey(mode):
    """Above WORK_SIZE an image is reduced first: 1-bit, palette and 16-bit images read like grey."""
    base = Image.new("L", (4 * WORK_SIZE, 3 * WORK_SIZE), 255)
    ImageDraw.Draw(base).line([(400, 300), (1600, 300), (800, 1400)], fill=0, width=40)
    assert np.array_equal(normalize(load_image(png_bytes(base.convert(mode)))).image,
                          normalize(load_image(png_bytes(base))).image)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_reducing_by_strips_is_one_reduce(mode, rng):
    from digitkit.data.normalize import _reduce

    image = Image.fromarray(rng.integers(0, 256, (1100, 1537, len(mode)), dtype=np.uint8), mode)
    assert np.array_equal(np.asarray(_reduce(image, 5)), np.asarray(image.reduce(5)))


def test_blank_is_its_own_error_type():
    with pytest.raises(BlankImage):
        normalize(Image.new("L", (50, 50), 255))
    assert issubclass(BlankImage, NormalizeError)


def test_a_bad_file_never_aborts_the_batch(tmp_path, run):
    from digitkit.classifier import load_classifier

    good = thin_drawing(200)
    good.save(tmp_path / "a.png")
    good.convert("RGB").convert("LAB").save(tmp_path / "lab.tif")  # once raised ValueError mid-batch
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    truncated = png_bytes(good)
    (tmp_path / "cut.png").write_bytes(truncated[: len(truncated) // 2])
    paths = [tmp_path / n for n in ("a.png", "lab.tif", "empty.png", "folder.png", "blank.png", "cut.png")]
    answers = read_files(load_classifier(run.path), paths)
    assert isinstance(answers[0], Answer) and isinstance(answers[1], Answer)
    assert all(isinstance(a, str) for a in answers[2:]), answers  # each file's own error


def test_save_input_never_overwrites(tmp_path, run):
    from digitkit.classifier import load_classifier

    thin_drawing(100).save(tmp_path / "a.png")
    thin_drawing(120).convert("RGB").save(tmp_path / "a.jpg")
    seen = tmp_path / "seen"
    seen.mkdir()
    (seen / "a.png").write_bytes(b"the user's own file")
    paths = [tmp_path / "a.png", tmp_path / "a.jpg"]
    written = save_inputs(paths, read_files(load_classifier(run.path), paths), seen)
    assert (seen / "a.png").read_bytes() == b"the user's own file"
    saved = {path.name for path in written}
    assert len(saved) == 2 and "a.png" not in saved
    assert all(Image.open(seen / name).size == (28, 28) for name in saved)


def test_recursive_globs_do_not_follow_symlink_loops(tmp_path):
    (tmp_path / "d").mkdir()
    thin_drawing(50).save(tmp_path / "d" / "x.png")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    os.symlink(tmp_path, tmp_path / "d" / "up")
    assert labelled_inputs([str(tmp_path / "**" / "*.png")]) == [(tmp_path / "d" / "x.png", None)]


def test_brackets_in_file_names_are_printed_as_they_are(tmp_path, run, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    thin_drawing(80).save("[bold]7[red].png")
    assert main(["predict", str(run.path), "[bold]7[red].png"]) == 0
    assert "[bold]7[red].png" in capsys.readouterr().out


# -- run folders, exported files ---------------------------------------------------------------------
def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, tiny_mnist_dir):
    from digitkit.train import TrainConfig, train

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("irreplaceable")
    config = TrainConfig.from_preset("fast", limit=100, epochs=1, val_size=50, name="mine", overwrite=True,
                                     runs_dir=str(tmp_path), data_dir=str(tiny_mnist_dir))
    with pytest.raises(DigitkitError, match="not a run folder"):
        train(config, quiet=True)
    assert (mine / "thesis.txt").read_text() == "irreplaceable"


def test_an_interrupted_retrain_keeps_the_old_run(tmp_path, tiny_mnist_dir):
    from digitkit.train import TrainConfig, train

    config = TrainConfig.from_preset("fast", limit=200, epochs=2, val_size=50, name="r", runs_dir=str(tmp_path),
                                     data_dir=str(tiny_mnist_dir))
    old = train(config, quiet=True)
    before = (old.path / "metrics.json").read_bytes()

    def interrupt(*_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(dataclasses.replace(config, overwrite=True), on_epoch_end=interrupt, quiet=True)
    assert (old.path / "metrics.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no partial folder left behind


@pytest.mark.parametrize("overrides, message", [
    ({"lr": float("nan")}, "lr must be"), ({"lr": float("inf")}, "lr must be"), ({"lr": 1e9}, "lr must be"),
    ({"val_size": -1}, "val size"), ({"synthetic": 1.5}, "synthetic"), ({"epochs": 2.5}, "epochs"),
])
def test_settings_that_cannot_work(tmp_path, tiny_mnist_dir, overrides, message):
    from digitkit.train import TrainConfig, train

    with pytest.raises(ConfigError, match=message):
        train(TrainConfig.from_preset("fast", runs_dir=str(tmp_path), data_dir=str(tiny_mnist_dir), **overrides),
              quiet=True)
    assert not any(tmp_path.iterdir())


def test_cli_names_the_flag(tmp_path, capsys):
    assert main(["train", "--lr", "nan", "--runs-dir", str(tmp_path)]) == 2
    assert "--lr must be" in capsys.readouterr().err


@pytest.mark.parametrize("overrides", [{"val_size": 0}, {"limit": 64, "batch_size": 64}])
def test_edge_settings_train(tmp_path, tiny_mnist_dir, overrides):
    """No validation split; one-cycle over fewer steps than it needs to warm up."""
    from digitkit.train import TrainConfig, train

    config = TrainConfig.from_preset("fast", **({"limit": 300, "epochs": 1, "val_size": 50, "name": "e",
                                                 "runs_dir": str(tmp_path), "data_dir": str(tiny_mnist_dir)} | overrides))
    run = train(config, quiet=True)
    assert (run.path / "model.keras").is_file()


def test_a_diverging_run_fails_and_leaves_nothing(tmp_path, tiny_mnist_dir, monkeypatch):
    import torch

    from digitkit.train import TrainConfig, loop, train

    monkeypatch.setattr(loop, "_loss", lambda probs, labels, smoothing: probs.sum() * torch.tensor(float("nan")))
    config = TrainConfig.from_preset("fast", limit=200, epochs=1, val_size=50, name="nan", runs_dir=str(tmp_path),
                                     data_dir=str(tiny_mnist_dir))
    with pytest.raises(DigitkitError, match="diverged"):
        train(config, quiet=True)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("file, content, message", [
    ("config.json", "[1, 2]", "must hold a JSON object"),
    ("config.json", '{"dataset": "cifar"}', "unknown dataset"),
    ("config.json", '{"labels": [1, 2]}', "'labels' must be a list"),
    ("config.json", "{not json", "not valid JSON"),
])
def test_broken_run_folder_fields(tmp_path, run, file, content, message):
    from digitkit.classifier import load_classifier

    broken = tmp_path / "broken"
    shutil.copytree(run.path, broken)
    (broken / file).write_text(content)
    with pytest.raises(DigitkitError, match=message):
        load_classifier(broken)


def test_odd_metrics_do_not_break_export(tmp_path, run):
    from digitkit.classifier import KerasClassifier
    from digitkit.export import export

    odd = tmp_path / "odd"
    shutil.copytree(run.path, odd)
    (odd / "metrics.json").write_text('{"test_accuracy": "very good"}')
    assert KerasClassifier.load(odd).test_accuracy is None
    assert export(odd, "onnx").is_file()


def test_keras_file_with_another_input_shape(tmp_path):
    import keras

    from digitkit.classifier import load_classifier

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "other.keras")
    with pytest.raises(DigitkitError, match="inputs of shape"):
        load_classifier(tmp_path / "other.keras")


def _onnx(tmp_path, name, inputs, outputs, labels=None):
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Flatten", [inputs[0][0]], [outputs[0][0]])] if inputs else [
        helper.make_node("Constant", [], [outputs[0][0]], value=helper.make_tensor("v", TensorProto.FLOAT, [1, 10], [0.1] * 10))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if labels is not None:
        model.metadata_props.add(key="labels", value=labels)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("name, inputs, outputs, labels, message", [
    ("two-labels.onnx", [("image", ["N", 10])], [("p", ["N", 10])], "a,b", "input"),
    ("flat.onnx", [("image", ["N", 784])], [("p", ["N", 784])], None, "input"),
    ("no-inputs.onnx", [], [("p", [1, 10])], None, "one image input"),
    ("784-outputs.onnx", [("image", ["N", 1, 28, 28])], [("p", ["N", 784])], None, "no 'labels'"),
])
def test_onnx_files_that_are_not_digitkit_classifiers(tmp_path, name, inputs, outputs, labels, message):
    from digitkit.classifier import load_classifier

    with pytest.raises(DigitkitError, match=message):
        load_classifier(_onnx(tmp_path, name, inputs, outputs, labels))


def test_onnx_labels_that_do_not_match_the_outputs(tmp_path, run):
    import onnx

    from digitkit.classifier import load_classifier
    from digitkit.export import export

    path = export(run.path, "onnx", tmp_path / "m.onnx")
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "labels":
            prop.value = "yes,no"
    onnx.save(model, str(path))
    with pytest.raises(DigitkitError, match="10 values for 2 labels"):
        load_classifier(path)


def test_export_never_replaces_a_folder_that_is_not_a_package(tmp_path, run):
    from digitkit.export import export

    target = tmp_path / "mine.mlpackage"
    target.mkdir()
    (target / "notes.txt").write_text("keep")
    with pytest.raises(DigitkitError, match="not a Core ML package"):
        export(run.path, "coreml", target)
    assert (target / "notes.txt").read_text() == "keep"
    first = export(run.path, "onnx", tmp_path / "m.onnx")
    assert export(run.path, "onnx", first) == first  # its own kind of file is replaced
    assert oct(first.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not the 0600 of a temp file


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- Core ML packages that point outside themselves --------------------------------------------------
@pytest.fixture(scope="module")
def package(run, tmp_path_factory):
    from digitkit.export import export

    return export(run.path, "coreml", tmp_path_factory.mktemp("pkg") / "m.mlpackage")


def _copy(package, tmp_path):
    copy = tmp_path / "copy.mlpackage"
    shutil.copytree(package, copy)
    return copy


@pytest.mark.parametrize("root", ["../../../etc/passwd", "/etc/hostname", "com.apple.CoreML/../../../Manifest.json"])
def test_manifest_paths_outside_the_package(tmp_path, package, root):
    from digitkit.classifier import load_classifier

    copy = _copy(package, tmp_path)
    manifest = json.loads((copy / "Manifest.json").read_text())
    manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]["path"] = root
    (copy / "Manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DigitkitError, match="relative to the package|outside the package"):
        load_classifier(copy)


@pytest.mark.parametrize("where", ["@model_path/../../../../etc/passwd", "/dev/zero", "@model_path/weights/link.bin",
                                   "@model_path/weights/fifo.bin"])
def test_weight_paths_outside_the_package_or_not_files(tmp_path, package, where):
    from digitkit.classifier import load_classifier
    from digitkit.deps import coremltools

    copy = _copy(package, tmp_path)
    weights = copy / "Data" / "com.apple.CoreML" / "weights"
    os.symlink("/dev/zero", weights / "link.bin")
    os.mkfifo(weights / "fifo.bin")
    spec_path = copy / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec = coremltools().proto.Model_pb2.Model()
    spec.ParseFromString(spec_path.read_bytes())
    for op in spec.mlProgram.functions["main"].block_specializations[spec.mlProgram.functions["main"].opset].operations:
        for value in op.attributes.values():
            if value.WhichOneof("value") == "blobFileValue":
                value.blobFileValue.fileName = where
    spec_path.write_bytes(spec.SerializeToString())
    with pytest.raises(DigitkitError, match="outside the package|relative to the package|not a regular file"):
        load_classifier(copy).predict(np.zeros((1, 28, 28), np.uint8))


# -- the IDX reader --------------------------------------------------------------------------------
def _bomb(path, declared, megabytes):
    import gzip

    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + np.asarray(declared, ">u4").tobytes())
        chunk = bytes(1 << 20)
        for _ in range(megabytes):  # zeros: about a thousandth of their size on disk
            f.write(chunk)


def _peak_memory_mb(code: str) -> float:
    """Run ``code`` in a fresh Python and return how much its peak memory grew, in MB."""
    out = subprocess.run([sys.executable, "-c", "import resource, digitkit.data as d\n"
                          "start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n" + code +
                          "\nprint((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024)"],
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def test_gzip_bomb_is_refused_before_it_fills_memory(tmp_path):
    from digitkit.data import IdxFormatError, read_idx

    claims_too_much = tmp_path / "claims-idx3-ubyte.gz"  # a header that declares 313 MB
    _bomb(claims_too_much, [400_000, 28, 28], 300)
    assert claims_too_much.stat().st_size < 2_000_000
    with pytest.raises(IdxFormatError, match="declares"):
        read_idx(claims_too_much, 3, (None, 28, 28))
    grown = _peak_memory_mb(f"""
try:
    d.read_idx({str(claims_too_much)!r}, 3, (None, 28, 28))
except d.IdxFormatError:
    pass""")
    assert grown < 20, f"refusing the bomb cost {grown:.0f} MB"  # the header is read, the rest never inflated
    # A small declared size and a long stream of zeros behind it: read up to the size, then refused.
    trailing = tmp_path / "trailing-idx3-ubyte.gz"
    _bomb(trailing, [10, 28, 28], 300)
    with pytest.raises(IdxFormatError, match="trailing bytes"):
        read_idx(trailing, 3, (None, 28, 28))
    assert _peak_memory_mb(f"""
try:
    d.read_idx({str(trailing)!r}, 3, (None, 28, 28))
except d.IdxFormatError:
    pass""") < 20


def test_export_to_a_folder_that_cannot_take_files_is_an_error_line(run, capsys):
    for target in ("/proc/x.onnx", "/proc/x.mlpackage"):
        assert main(["export", str(run.path), "--format", "onnx" if target.endswith("onnx") else "coreml",
                     "-o", target]) != 0
        err = capsys.readouterr().err
        assert "error:" in err and "cannot write /proc/x" in err and "Traceback" not in err


def test_weight_blob_shorter_than_its_declared_shape(tmp_path, package):
    from digitkit.classifier import load_classifier

    copy = _copy(package, tmp_path)
    weights = copy / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    blob = bytearray(weights.read_bytes())
    # Shrink the first blob's declared byte size: the data no longer fills the tensor's shape.
    import struct

    sentinel, dtype, size, offset = struct.unpack_from("<IIQQ", blob, 64)
    struct.pack_into("<IIQQ", blob, 64, sentinel, dtype, size // 2, offset)
    weights.write_bytes(bytes(blob))
    with pytest.raises(DigitkitError, match="declared shape"):
        load_classifier(copy).predict(np.zeros((1, 28, 28), np.uint8))


# -- start-up ----------------------------------------------------------------------------------------
def test_version_and_help_start_quietly_without_torch():
    code = ("import sys; from digitkit.cli import main\n"
            "try: main(['--version'])\nexcept SystemExit: pass\n"
            "print('torch' in sys.modules, 'keras' in sys.modules, 'coremltools' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split()[-3:] == ["False", "False", "False"], out.stdout
    assert out.stderr == ""


def test_commands_print_no_coremltools_chatter(run, tmp_path):
    out = subprocess.run([sys.executable, "-m", "digitkit", "export", str(run.path), "-o", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Failed to load" not in out.stderr + out.stdout and "not supported" not in out.stderr + out.stdout
    assert "MIL" not in out.stderr + out.stdout  # no progress bars of coremltools' internal passes


def test_model_keras_loads_in_plain_keras_without_digitkit(run):
    code = ("import os; os.environ['KERAS_BACKEND'] = 'torch'\n"
            "import sys, keras, numpy as np\n"
            f"m = keras.saving.load_model({str(run.model_path)!r})\n"
            "assert 'digitkit' not in sys.modules\n"
            "print(sorted({type(l).__module__.split('.')[0] for l in m.layers}), m.predict(np.zeros((2, 28, 28, 1)), verbose=0).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "['keras'] (2, 10)" in out.stdout
