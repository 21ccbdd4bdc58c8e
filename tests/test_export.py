import json

import numpy as np
import pytest

from digitkit import DigitkitError
from digitkit.cli import main
from digitkit.deps import coremltools
from digitkit.classifier import KerasClassifier
from digitkit.export import export
from digitkit.verify.variants import export_variants
from digitkit.verify import verify
from digitkit.coreml import CoreMLModel, _read_spec
from digitkit.coreml.blob import BlobFile

ct = coremltools()


@pytest.fixture(scope="session")
def run(trained_run):
    return trained_run


@pytest.fixture(scope="session")
def mlpackage(run):
    return export(run.path, "coreml")


def test_mlpackage_spec_is_an_image_classifier(run, mlpackage):
    assert mlpackage == run.path / "MNISTClassifier.mlpackage"
    spec = ct.utils.load_spec(str(mlpackage))
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.specificationVersion == 7  # iOS 16
    (inp,) = spec.description.input
    assert inp.name == "image"
    image = inp.type.imageType
    assert (image.width, image.height) == (28, 28)
    assert image.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.GRAYSCALE
    assert "white (255) ink on black" in inp.shortDescription
    outputs = {o.name: o for o in spec.description.output}
    assert set(outputs) == {"classLabel", "classLabelProbs"}
    assert outputs["classLabelProbs"].type.WhichOneof("Type") == "dictionaryType"
    assert spec.description.predictedFeatureName == "classLabel"
    assert spec.description.predictedProbabilitiesName == "classLabelProbs"
    meta = spec.description.metadata
    assert meta.author == "digitkit" and "MIT" in meta.license and meta.shortDescription and meta.versionString
    user = dict(meta.userDefined)
    assert user["com.apple.coreml.model.preview.type"] == "imageClassifier"
    assert user["dataset"] == "mnist"
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert float(user["test_accuracy"]) == pytest.approx(metrics["test_accuracy"], abs=1e-4)
    assert {"digitkit_version", "keras_version"} <= set(user)
    assert CoreMLModel(mlpackage).class_labels == [str(d) for d in range(10)]


def test_image_scale_is_one_over_255(run, mlpackage, mnist):
    """Pixels 0..255 go in; the model must see pixels/255, as in training (the tutorial's bug)."""
    model = CoreMLModel(mlpackage)
    scale_ops = [op for op in model.program.block.operations if op.type == "mul"]
    assert scale_ops, "no scaling op after the image input"
    keras_probs = np.asarray(run.load_model()(mnist.x_test[:20, :, :, None] / 255.0, training=False).detach())
    np.testing.assert_allclose(model.predict(mnist.x_test[:20]).probabilities, keras_probs, atol=1e-4)


def test_fp32_agrees_exactly(mlpackage):
    report = verify(mlpackage, limit=500)
    assert report["agreement"] == 1.0
    assert report["max_abs_diff"] < 1e-4
    assert report["test_accuracy"] == report["keras_test_accuracy"]


def test_fp16_neuralnetwork_and_onnx(run, tmp_path):
    fp16 = export(run.path, "coreml", tmp_path / "a.mlpackage", precision="fp16")
    half = verify(fp16, run.path, limit=500)
    # The shared test model is two epochs on 1,200 images, with near ties among its 300 test
    # answers: fp16 may turn one; its probabilities stay within fp16's rounding.
    assert half["agreement"] >= 0.99 and half["max_abs_diff"] < 0.02
    nn = export(run.path, "coreml-nn", tmp_path)
    assert nn.name == "MNISTClassifier.mlmodel"
    spec = _read_spec(nn)
    assert spec.WhichOneof("Type") == "neuralNetworkClassifier"
    assert spec.neuralNetworkClassifier.preprocessing[0].scaler.channelScale == pytest.approx(1 / 255)
    assert list(spec.neuralNetworkClassifier.stringClassLabels.vector) == [str(d) for d in range(10)]
    report = verify(nn, run.path, limit=500)
    assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4
    onnx_path = export(run.path, "onnx", tmp_path)
    report = verify(onnx_path, run.path, limit=500)
    assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-5
    import onnx

    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert props["labels"] == ",".join(str(d) for d in range(10)) and props["input_scale"] == "1/255"


@pytest.mark.parametrize("compress, op, min_agreement", [("int8", "constexpr_affine_dequantize", 0.99),
                                                         ("palettize4", "constexpr_lut_to_dense", 0.9)])
def test_compressed_weights_run(run, tmp_path, compress, op, min_agreement):
    path = export(run.path, "coreml", tmp_path / f"{compress}.mlpackage", compress=compress)
    assert op in {o.type for o in CoreMLModel(path).program.block.operations}
    report = verify(path, run.path, limit=500)
    assert report["agreement"] >= min_agreement  # 4-bit is lossy; this barely-trained model is fragile
    # Our decompression equals coremltools' own reference implementation of the op.
    from coremltools.converters.mil.mil.ops.defs.iOS16 import constexpr_ops

    program = CoreMLModel(path).program
    for o in program.block.operations:
        if o.type == op:
            args = {k: program._value(v) for k, v in o.attributes.items() if k != "name"}
            reference = (constexpr_ops.constexpr_lut_to_dense.decompress(args["lut"], args["indices"], args["shape"])
                         if compress == "palettize4" else constexpr_ops.constexpr_affine_dequantize.decompress(
                             args["quantized_data"], args["zero_point"], args["scale"], args["axis"]))
            np.testing.assert_allclose(program.constants[o.outputs[0].name], reference, rtol=1e-6)
    assert report["size_bytes"] < verify(run.path / "MNISTClassifier.mlpackage", run.path, limit=10)["size_bytes"]


def test_blob_reader_matches_coremltools(mlpackage):
    from coremltools.libmilstoragepython import _BlobStorageReader

    weights = mlpackage / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    ours, theirs = BlobFile(weights), _BlobStorageReader(str(weights))
    offsets = [64 + 0]  # the first blob's metadata sits right after the 64-byte header
    first = ours.read(offsets[0])
    np.testing.assert_array_equal(first, theirs.read_float_data(offsets[0]))
    assert ours.count >= 4


def test_export_variants_writes_table(run, tmp_path):
    from digitkit.deps import litert_installed

    table = export_variants(run.path, tmp_path, limit=300)
    count = 10 if litert_installed() else 7  # the three LiteRT rows need the optional extra
    assert len(table["variants"]) == count
    # One Keras model serves every export: each must agree with it (an export must not alter it).
    minimum = {("fp32", "none"): 1.0, ("fp16", "none"): 0.99, ("fp32", "int8"): 0.98, ("fp32", "palettize4"): 0.85,
               ("int8", "none"): 0.98}
    for row in table["variants"]:
        assert row["agreement"] >= minimum[(row["precision"], row["compression"])], row
    assert (tmp_path / "variants.md").read_text().count("\n| ") == count + 1  # header + rows
    assert json.loads((tmp_path / "variants.json").read_text()) == table
    assert {r["file"] for r in table["variants"]} == {p.name for p in tmp_path.iterdir()} - {"variants.md", "variants.json"}


@pytest.mark.parametrize("name, content, message", [
    ("missing.mlpackage", None, "model file not found"),
    ("bad.mlmodel", b"\x00garbage" * 10, "not a Core ML model file"),
    ("model.pt", b"x", "unsupported model file"),
])
def test_verify_bad_files(tmp_path, run, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DigitkitError, match=message):
        verify(path, run.path)


def test_package_without_manifest(tmp_path, run):
    (tmp_path / "x.mlpackage").mkdir()
    with pytest.raises(DigitkitError, match="no Manifest.json"):
        verify(tmp_path / "x.mlpackage", run.path)


def test_failed_export_leaves_no_file(run, tmp_path, monkeypatch):
    import digitkit.export.torch_graph as tg

    def broken(model):
        raise RuntimeError("boom")

    monkeypatch.setattr(tg, "exported_program", broken)
    with pytest.raises(Exception):
        export(run.path, "coreml", tmp_path / "out.mlpackage")
    assert list(tmp_path.iterdir()) == []


def test_export_errors(run, tmp_path):
    with pytest.raises(DigitkitError, match="unsupported format"):
        export(run.path, "tflite")
    with pytest.raises(DigitkitError, match="ONNX export is fp32 only"):
        export(run.path, "onnx", precision="fp16")
    with pytest.raises(DigitkitError, match="must end in .mlpackage"):
        export(run.path, "coreml", tmp_path / "model.onnx")
    (tmp_path / "half").mkdir()
    with pytest.raises(DigitkitError, match="has no model.keras"):
        export(tmp_path / "half", "coreml")


def test_cli_export_and_verify(run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(run.path), "--format", "onnx", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--against", str(run.path), "--limit", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agreement"] == 1.0 and report["passed"]
    assert main(["verify", str(out), "--against", str(run.path), "--limit", "50", "--min-agreement", "1.01"]) == 1
    assert main(["verify", str(tmp_path / "nope.onnx")]) == 2


def test_export_leaves_the_keras_model_unchanged(run):
    import torch

    source = KerasClassifier.load(run.path)
    before = [w.copy() for w in source.model.get_weights()]
    from digitkit.export.core import _coreml_model

    _coreml_model(source, "coreml", "fp32", "none")
    for old, new in zip(before, source.model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert torch.is_tensor(next(iter(source.model.parameters())))


def test_keras_file_loads_in_a_fresh_process(run):
    import subprocess
    import sys

    code = f"from digitkit.classifier import load_classifier; print(load_classifier({str(run.model_path)!r}).labels)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'9'" in out.stdout


def test_export_source_from_keras_file(run, tmp_path):
    source = KerasClassifier.load(run.model_path)
    assert source.run is not None and source.test_accuracy is not None


def test_variants_without_the_litert_extra_say_what_is_missing(run, tmp_path, monkeypatch):
    import digitkit.verify.variants as variants

    monkeypatch.setattr(variants, "litert_installed", lambda: False)
    monkeypatch.setattr(variants, "VARIANTS", [("onnx", "fp32", "none"), ("litert", "fp32", "none")])
    table = variants.export_variants(run.path, tmp_path, limit=50)
    assert [r["format"] for r in table["variants"]] == ["onnx"]
    assert 'pip install "digitkit[litert]"' in table["skipped"]
    assert 'pip install "digitkit[litert]"' in (tmp_path / "variants.md").read_text()


def test_shift_averaged_model_exports_to_every_format_as_one_model(run, tmp_path):
    """A --shift-average run (the best preset's) is one model with the same contract in every format,
    and every reader (digitkit's Core ML reader, onnxruntime, LiteRT) answers as Keras does."""
    import shutil

    from digitkit.classifier import OnnxClassifier
    from digitkit.deps import litert_installed
    from digitkit.models import SHIFTS, shift_averaged, shift_images
    from digitkit.runs import Run

    averaged_run = tmp_path / "averaged"
    shutil.copytree(run.path, averaged_run, ignore=shutil.ignore_patterns("*.onnx", "exports"))
    base = Run.open(run.path).load_model()
    shift_averaged(base).save(averaged_run / "model.keras")
    formats = ["coreml", "coreml-nn", "onnx"] + (["litert"] if litert_installed() else [])
    for fmt in formats:
        report = verify(export(averaged_run, fmt, tmp_path), averaged_run, limit=200)
        assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4, (fmt, report)
    # What the files compute is the average over the shifted images, not the network alone.
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    x = (images / 255).astype("float32")[..., None]
    expected = np.mean([np.asarray(base.predict(shift_images(x, dy, dx), verbose=0)) for dy, dx in SHIFTS], axis=0)
    answered = OnnxClassifier(tmp_path / "MNISTClassifier.onnx").predict(images)
    np.testing.assert_allclose(answered, expected, atol=1e-5)
    assert not np.allclose(expected, np.asarray(base.predict(x, verbose=0)), atol=1e-3)
