"""LiteRT (.tflite) export for Android: the file's contract, its verification in Google's LiteRT
interpreter on all 10,000 MNIST test images, and predict / serve / export --all with it."""

import json
import os
import sys

import numpy as np
import pytest

from digitkit import DigitkitError
from digitkit.cli import main
from digitkit.deps import litert_installed

if not litert_installed():
    if os.environ.get("CI"):  # CI installs the extra: its absence there is a failure, not a skip
        raise RuntimeError('the LiteRT extra is not installed: pip install -e ".[dev,litert]"')
    pytest.skip('the LiteRT extra is not installed (pip install -e ".[dev,litert]")', allow_module_level=True)

from digitkit.classifier import KerasClassifier, LiteRTClassifier, load_classifier  # noqa: E402
from digitkit.export import export  # noqa: E402
from digitkit.verify import Reference, verify  # noqa: E402


@pytest.fixture(scope="module")
def run(trained_run):
    return trained_run


@pytest.fixture(scope="module")
def exported(run):
    return {p: export(run.path, "litert", run.path / f"MNISTClassifier-{p}.tflite", precision=p)
            for p in ("fp32", "fp16", "int8")}


@pytest.fixture(scope="module")
def full_test_reference(run, mnist):
    """The Keras model's answers on MNIST's whole test split (the run's own is a 300-image sample)."""
    trained = KerasClassifier.load(run.path)
    return Reference(trained.name, trained.labels, mnist.x_test, mnist.y_test, trained.predict(mnist.x_test))


def test_default_name_and_contract(run):
    path = export(run.path, "litert")
    assert path == run.path / "MNISTClassifier.tflite"
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner()
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    assert list(inputs) == ["image"] and list(outputs) == ["probabilities"]
    assert list(inputs["image"]["shape"]) == [1, 1, 28, 28] and inputs["image"]["dtype"] == np.float32
    assert list(outputs["probabilities"]["shape"]) == [1, 10]
    # The same image gives the same probabilities as the ONNX file (the shared contract).
    from digitkit.classifier import OnnxClassifier

    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 6:22, 12:16] = 255  # a 1
    onnx = OnnxClassifier(export(run.path, "onnx"))
    np.testing.assert_allclose(LiteRTClassifier(path).predict(image), onnx.predict(image), atol=1e-5)


def test_metadata_travels_in_the_file(run, exported):
    from digitkit.litert_metadata import read_metadata

    metrics = json.loads((run.path / "metrics.json").read_text())
    for precision, path in exported.items():
        meta = read_metadata(path.read_bytes())
        assert meta["labels"] == [str(d) for d in range(10)] and meta["run"] == run.name and meta["dataset"] == "mnist"
        assert meta["precision"] == precision and "white ink on black" in meta["input"]
        assert meta["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-4)
        model = LiteRTClassifier(path)
        assert model.name == run.name and model.labels == meta["labels"] and model.format == "litert"


def test_smaller_variants_are_smaller(exported):
    sizes = {p: path.stat().st_size for p, path in exported.items()}
    assert sizes["int8"] < sizes["fp16"] < sizes["fp32"]
    assert sizes["int8"] < 0.45 * sizes["fp32"] and sizes["fp16"] < 0.65 * sizes["fp32"]


def test_verified_on_all_10000_test_images(exported, full_test_reference):
    reports = {p: verify(path, full_test_reference) for p, path in exported.items()}
    for precision in ("fp32", "fp16"):
        assert reports[precision]["images"] == 10_000
        assert reports[precision]["agreement"] >= 0.999, reports[precision]
    assert reports["fp32"]["max_abs_diff"] < 1e-4
    keras_accuracy = reports["int8"]["keras_test_accuracy"]
    assert keras_accuracy - reports["int8"]["test_accuracy"] < 0.005, reports["int8"]  # int8 costs < 0.5 points
    assert reports["int8"]["agreement"] >= 0.99


def test_cli_verify_predict_and_variants_table(run, exported, tmp_path, capsys):
    assert main(["verify", str(exported["fp16"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["against"] == run.name
    from PIL import Image

    from digitkit.data import load_dataset

    test = load_dataset("mnist", run.config["data_dir"])
    for i in range(3):
        Image.fromarray(255 - test.x_test[i]).save(tmp_path / f"{i}.png")  # dark ink on white, as scanned
    assert main(["predict", str(exported["int8"]), str(tmp_path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in rows] == [str(tmp_path / f"{i}.png") for i in range(3)]
    assert all(r["verdict"] in ("sure", "not sure", "not a class") for r in rows)
    from digitkit.verify.variants import export_variants

    table = export_variants(run.path, tmp_path / "all", limit=300)
    lite = [r for r in table["variants"] if r["format"] == "litert"]
    assert [r["precision"] for r in lite] == ["fp32", "fp16", "int8"] and table["skipped"] is None
    assert "| litert | int8 |" in (tmp_path / "all" / "variants.md").read_text()


def test_served_from_a_tflite_file(exported):
    from fastapi.testclient import TestClient

    from digitkit.serve import create_app, load_served_model, served_model_path

    path = served_model_path(exported["fp32"])
    assert path == exported["fp32"]
    client = TestClient(create_app(load_served_model(path)))
    assert client.get("/api/model").json()["format"] == "litert"
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255
    from io import BytesIO

    from PIL import Image

    png = BytesIO()
    Image.fromarray(image).save(png, "PNG")
    answer = client.post("/api/predict", files={"file": ("one.png", png.getvalue(), "image/png")})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["probabilities"]) == {str(d) for d in range(10)}


def test_bad_files_and_missing_extra(tmp_path, run, monkeypatch):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00not a flatbuffer" * 8)
    with pytest.raises(DigitkitError, match="not a loadable LiteRT model"):
        load_classifier(junk)
    (tmp_path / "folder.tflite").mkdir()
    with pytest.raises(DigitkitError, match="not a loadable LiteRT model"):
        load_classifier(tmp_path / "folder.tflite")
    huge = tmp_path / "huge.tflite"
    with open(huge, "wb") as f:
        f.truncate(300 * 2**20)  # sparse: no disk used
    with pytest.raises(DigitkitError, match="far larger than a digit model"):
        load_classifier(huge)
    with pytest.raises(DigitkitError, match="LiteRT files are made smaller"):
        export(run.path, "litert", compress="int8")
    with pytest.raises(DigitkitError, match="int8 is for LiteRT"):
        export(run.path, "coreml", precision="int8")
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # as if the extra were not installed
    with pytest.raises(DigitkitError, match=r'pip install "digitkit\[litert\]"'):
        export(run.path, "litert", tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()
