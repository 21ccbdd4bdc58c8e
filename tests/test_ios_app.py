"""The iOS app: what can be checked without Xcode. The Swift names match what `digitkit export`
writes; the Swift normaliser's constants and steps match the Python one; its Swift package tests
it against docs/preprocessing_vectors.json (`swift test`, run here when a Swift toolchain is on
PATH); the Xcode project builds the package's file, with a bundle identifier each developer sets."""

import json
import re
from pathlib import Path

import pytest

from digitkit.data import normalize as py
from digitkit.export.core import PROBS_OUTPUT
from digitkit.classifier import NOT_A_CLASS_BELOW, SURE_ABOVE

APP = Path(__file__).parents[1] / "apps" / "ios"
PACKAGE = APP / "DigitNormalizer"
SWIFT = {p.name: p.read_text() for p in (APP / "MNISTDraw").glob("*.swift")}
NORMALIZER = (PACKAGE / "Sources" / "DigitNormalizer" / "DigitNormalizer.swift").read_text()
VERDICT = (PACKAGE / "Sources" / "DigitNormalizer" / "Verdict.swift").read_text()
PROJECT = (APP / "MNISTDraw.xcodeproj" / "project.pbxproj").read_text()
VECTORS = Path(__file__).parents[1] / "docs" / "preprocessing_vectors.json"


def test_project_builds_every_source_the_normaliser_package_file_and_the_model():
    for name in [*SWIFT, "MNISTClassifier.mlpackage"]:
        assert f"path = {name};" in PROJECT, name
        assert f"{name} in Sources" in PROJECT, name
    # One copy of the Foundation-only code: the app compiles the Swift package's files.
    for name in ("DigitNormalizer.swift", "Verdict.swift"):
        match = re.search(rf"name = {name}; path = ([^;]+);", PROJECT)
        assert match and (APP / "MNISTDraw" / match.group(1)).resolve() == (PACKAGE / "Sources" / "DigitNormalizer" /
                                                                              name).resolve()
        assert f"{name} in Sources" in PROJECT
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


def test_thresholds_and_words_match_the_web_page():
    for name, value in (("sureAbove", SURE_ABOVE), ("notAClassBelow", NOT_A_CLASS_BELOW)):
        match = re.search(rf"static let {name}: Float = ([0-9.]+)", VERDICT)
        assert match and float(match.group(1)) == value, name
    assert "That doesn't look like a digit" in VERDICT
    assert "verdict == .notAClass" in SWIFT["ContentView.swift"] and "Verdict.notAClassMessage" in SWIFT["ContentView.swift"]


def test_app_builds_in_swift_6_mode_for_every_orientation_with_an_icon():
    assert PROJECT.count("SWIFT_VERSION = 6.0;") == 2 and "SWIFT_VERSION = 5" not in PROJECT
    reader = SWIFT["DigitReader.swift"]
    assert "struct Result: @unchecked Sendable" in reader and "struct Problem: Error, Sendable" in reader
    # iOS 17+ Simulators: CPU-only on the request too, not only on the model.
    assert "setComputeDevice(cpu, for: .main)" in reader and "usesCPUOnly = true" in reader
    # iPad (device family 2) needs all four orientations; the iPhone stays portrait.
    ipad = re.findall(r'INFOPLIST_KEY_UISupportedInterfaceOrientations_iPad = "([^"]+)";', PROJECT)
    assert len(ipad) == 2 and all(len(v.split()) == 4 for v in ipad)
    assert PROJECT.count("ASSETCATALOG_COMPILER_APPICON_NAME = AppIcon;") == 2 and "Assets.xcassets in Resources" in PROJECT
    icon_set = APP / "MNISTDraw" / "Assets.xcassets" / "AppIcon.appiconset"
    icon = json.loads((icon_set / "Contents.json").read_text())["images"][0]
    from PIL import Image

    with Image.open(icon_set / icon["filename"]) as image:
        assert image.size == (1024, 1024) and image.mode == "RGB"  # App Store icons have no alpha


def test_swift_that_needs_only_foundation_lives_in_the_package():
    """The package compiles and runs on Linux (tests/test_swift.py); the app's folder keeps only files
    that need Apple's frameworks."""
    for path in (APP / "MNISTDraw").glob("*.swift"):
        imports = set(re.findall(r"^import (\w+)", path.read_text(), re.M))
        assert imports - {"Foundation"}, f"{path.name} needs only Foundation: move it into the package"
    for path in (PACKAGE / "Sources").rglob("*.swift"):
        imports = set(re.findall(r"^import (\w+)", path.read_text(), re.M))
        assert imports <= {"Foundation", "DigitNormalizer"}, f"{path}: {imports}"


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
