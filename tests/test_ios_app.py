"""The iOS app: what can be checked without Xcode. The Swift names match what `digitkit export`
writes; the Swift normaliser's constants and steps match the Python one; its Swift package tests
it against docs/preprocessing_vectors.json (`swift test`, run here when a Swift toolchain is on
PATH); the Xcode project builds the package's file, with a bundle identifier each developer sets."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from digitkit.data import normalize as py
from digitkit.export.core import PROBS_OUTPUT
from digitkit.serve.app import SURE_ABOVE

APP = Path(__file__).parents[1] / "apps" / "ios"
PACKAGE = APP / "DigitNormalizer"
SWIFT = {p.name: p.read_text() for p in (APP / "MNISTDraw").glob("*.swift")}
NORMALIZER = (PACKAGE / "Sources" / "DigitNormalizer" / "DigitNormalizer.swift").read_text()
PROJECT = (APP / "MNISTDraw.xcodeproj" / "project.pbxproj").read_text()
VECTORS = Path(__file__).parents[1] / "docs" / "preprocessing_vectors.json"


def test_project_builds_every_source_the_normaliser_package_file_and_the_model():
    for name in [*SWIFT, "MNISTClassifier.mlpackage"]:
        assert f"path = {name};" in PROJECT, name
        assert f"{name} in Sources" in PROJECT, name
    # One copy of the normaliser: the app compiles the Swift package's file.
    match = re.search(r"name = DigitNormalizer\.swift; path = ([^;]+);", PROJECT)
    assert match and (APP / "MNISTDraw" / match.group(1)).resolve() == (PACKAGE / "Sources" / "DigitNormalizer" /
                                                                          "DigitNormalizer.swift").resolve()
    assert "DigitNormalizer.swift in Sources" in PROJECT
    assert "IPHONEOS_DEPLOYMENT_TARGET = 16.0;" in PROJECT
    assert PROJECT.count("{") == PROJECT.count("}")


def test_bundle_identifier_is_a_setting_each_developer_changes():
    assert PROJECT.count('PRODUCT_BUNDLE_IDENTIFIER = "$(BUNDLE_ID_PREFIX).MNISTDraw";') == 2
    assert "BUNDLE_ID_PREFIX = com.example;" in PROJECT
    assert "BUNDLE_ID_PREFIX" in (APP / "README.md").read_text()


def test_swift_uses_the_exported_model_contract():
    from digitkit.classifier import load_classifier
    from digitkit.deps import coremltools

    reader = SWIFT["DigitReader.swift"]
    assert "MNISTClassifier(configuration:" in reader  # class Xcode generates from MNISTClassifier.mlpackage
    assert "VNClassificationObservation" in reader
    assert "modelDescription.classLabels" in reader  # labels come from the model, in its order
    assert "count: 10" not in reader and "0..<10" not in reader + SWIFT["ContentView.swift"]
    package = APP / "MNISTDraw" / "MNISTClassifier.mlpackage"
    assert package.is_dir(), "export a model into the app: digitkit export RUN -o apps/ios/MNISTDraw/"
    spec = coremltools().utils.load_spec(str(package))
    assert spec.description.input[0].name == "image"
    assert spec.description.input[0].type.imageType.width == py.FIELD
    assert spec.description.predictedProbabilitiesName == PROBS_OUTPUT
    assert load_classifier(package).labels == [str(d) for d in range(10)]


def test_app_behaviour_the_issue_asked_for():
    reader, view = SWIFT["DigitReader.swift"], SWIFT["ContentView.swift"]
    assert "targetEnvironment(simulator)" in reader and ".cpuOnly" in reader  # Vision on the Simulator
    assert "actor Engine" in reader and "await engine.read" in reader  # predictions off the main thread
    assert 'static let prompt = "Draw a digit in the box."' in reader and "clear()  // a cleared pad" in reader
    assert "strokes.append([])" not in view  # no empty stroke at the end of a gesture
    assert "Not sure" in view and "runnerUp" in view


def test_sure_threshold_matches_the_web_page():
    match = re.search(r"static let sureAbove: Float = ([0-9.]+)", SWIFT["DigitReader.swift"])
    assert match and float(match.group(1)) == SURE_ABOVE


@pytest.mark.parametrize("swift_name, python_name", [
    ("field", "FIELD"), ("box", "BOX"), ("noiseFraction", "NOISE_FRACTION"), ("speckFraction", "SPECK_FRACTION"),
    ("minContrast", "MIN_CONTRAST"), ("targetStroke", "TARGET_STROKE"), ("thinStroke", "THIN_STROKE"),
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


def test_swift_package_checks_every_vector():
    tests = (PACKAGE / "Tests" / "DigitNormalizerTests" / "VectorTests.swift").read_text()
    assert "docs/preprocessing_vectors.json" in tests and "DigitNormalizer.normalize(" in tests
    names = [case["name"] for case in json.loads(VECTORS.read_text())]
    for needed in ("speck removal", "thickening", "no thickening"):
        assert any(needed in name for name in names), needed
    assert "swift test" in (APP / "README.md").read_text()


@pytest.mark.skipif(shutil.which("swift") is None, reason="needs a Swift toolchain (swift.org)")
def test_swift_package_passes():
    out = subprocess.run(["swift", "test"], cwd=PACKAGE, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
