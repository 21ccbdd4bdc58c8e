"""The iOS app cannot be built here; check what can be: that the Swift code's names match what
`digitkit export` writes, and that the Swift normaliser mirrors the Python one."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitkit.export.core import PROBS_OUTPUT
from digitkit.data import normalize as py

APP = Path(__file__).parents[1] / "apps" / "ios"
SWIFT = {p.name: p.read_text() for p in (APP / "MNISTDraw").glob("*.swift")}
NORMALIZER = SWIFT["DigitNormalizer.swift"]
PROJECT = (APP / "MNISTDraw.xcodeproj" / "project.pbxproj").read_text()


def test_project_lists_every_source_and_the_model():
    for name in [*SWIFT, "MNISTClassifier.mlpackage"]:
        assert f"path = {name};" in PROJECT, name
        assert f"{name} in Sources" in PROJECT, name
    assert "IPHONEOS_DEPLOYMENT_TARGET = 16.0;" in PROJECT
    assert PROJECT.count("{") == PROJECT.count("}")


def test_swift_uses_the_exported_model_contract(tmp_path):
    from digitkit.deps import coremltools

    reader = SWIFT["DigitReader.swift"]
    assert "MNISTClassifier(configuration:" in reader  # class Xcode generates from MNISTClassifier.mlpackage
    assert "VNClassificationObservation" in reader and "Int(observation.identifier)" in reader
    package = APP / "MNISTDraw" / "MNISTClassifier.mlpackage"
    assert package.is_dir(), "export a model into the app: digitkit export RUN -o apps/ios/MNISTDraw/"
    spec = coremltools().utils.load_spec(str(package))
    assert spec.description.input[0].name == "image"
    assert spec.description.input[0].type.imageType.width == py.FIELD
    assert spec.description.predictedProbabilitiesName == PROBS_OUTPUT
    from digitkit.coreml import CoreMLModel

    assert CoreMLModel(package).class_labels == [str(d) for d in range(10)]  # Int(identifier) works
    assert "count: 10" in reader


@pytest.mark.parametrize("swift_name, python_name", [
    ("field", "FIELD"), ("box", "BOX"), ("noiseFraction", "NOISE_FRACTION"), ("speckFraction", "SPECK_FRACTION"),
    ("minContrast", "MIN_CONTRAST"), ("targetStroke", "TARGET_STROKE"),
])
def test_constants_match(swift_name, python_name):
    match = re.search(rf"static let {swift_name}(?:: \w+)? = ([0-9.]+)", NORMALIZER)
    assert match, swift_name
    assert float(match.group(1)) == getattr(py, python_name)


def test_steps_are_in_the_documented_order():
    body = NORMALIZER[NORMALIZER.index("static func normalize("):]
    body = body[: body.index("\n    }\n")]
    calls = re.findall(r"(inkMap|minContrast|clean|thicken|scale|centre)\(?", body)
    assert calls == ["inkMap", "minContrast", "clean", "thicken", "scale", "centre"]
    for detail in ["(values.count - 1) / 2", "background >= 128", "alpha.count", "> 127", "dy * dy + dx * dx <= grow * grow",
                   "toNearestOrEven", "0.6 * wanted", "Float(field) / 2"]:
        assert detail in NORMALIZER, detail


def lanczos_resize(plane: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """The resampling exactly as DigitNormalizer.scale() does it (and docs/preprocessing.md says)."""
    def lanczos(x):
        return np.where((x >= -3) & (x < 3), np.sinc(x) * np.sinc(x / 3), 0.0)

    def coefficients(n_in, n_out):
        scale = n_in / n_out
        filter_scale = max(scale, 1.0)
        support = 3.0 * filter_scale
        matrix = np.zeros((n_out, n_in))
        for out in range(n_out):
            center = (out + 0.5) * scale
            lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
            w = lanczos((np.arange(lo, hi) - center + 0.5) / filter_scale)
            matrix[out, lo:hi] = w / w.sum() if w.sum() else w
        return matrix

    wide = plane.astype(np.float64) @ coefficients(plane.shape[1], out_w).T
    return (coefficients(plane.shape[0], out_h) @ wide).astype(np.float32)


@pytest.mark.parametrize("shape, out", [((37, 91), (20, 8)), ((200, 120), (12, 20)), ((7, 5), (20, 14))])
def test_swift_resampling_is_pillows(shape, out):
    plane = np.random.default_rng(1).random(shape).astype(np.float32)
    pillow = np.asarray(Image.fromarray(plane, "F").resize(out, Image.Resampling.LANCZOS))
    np.testing.assert_allclose(lanczos_resize(plane, *out), pillow, atol=1e-5)
