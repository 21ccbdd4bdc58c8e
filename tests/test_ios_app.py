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


def parse_project(text: str = PROJECT) -> dict:
    """The project file as Xcode reads it: an OpenStep property list (a real parser, not a regex)."""
    import openstep_parser

    return openstep_parser.OpenStepDecoder().ParseFromString(text)


def referenced_ids(value) -> set[str]:
    """Every object identifier a project object names, through its lists and nested dictionaries."""
    if isinstance(value, str):
        return {value} if re.fullmatch(r"[0-9A-F]{24}", value) else set()
    if isinstance(value, dict):
        return set().union(*(referenced_ids(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced_ids(v) for v in value)) if value else set()
    return set()


PROJECT_KEYS = {"children", "files", "buildPhases", "targets", "buildConfigurations", "fileRef", "mainGroup",
                "productRefGroup", "buildConfigurationList", "productReference", "dependencies"}


def test_project_file_parses_and_every_reference_resolves():
    project = parse_project()
    objects = project["objects"]
    assert project["rootObject"] in objects and objects[project["rootObject"]]["isa"] == "PBXProject"
    for name, obj in objects.items():
        assert "isa" in obj, name
        for key in PROJECT_KEYS & obj.keys():
            missing = referenced_ids(obj[key]) - objects.keys()
            assert not missing, f"{name}.{key} names objects that do not exist: {missing}"
    # Every file reference sits in exactly one group (Xcode shows it once and knows its folder).
    groups = [obj for obj in objects.values() if obj["isa"] == "PBXGroup"]
    for name, obj in objects.items():
        if obj["isa"] == "PBXFileReference":
            holders = [g.get("name", g.get("path")) for g in groups if name in g["children"]]
            assert len(holders) == 1, f"{obj['path']} is in {len(holders)} groups: {holders}"


def target_phase_files(objects: dict, isa: str) -> dict[str, str]:
    """{file name: path as written} for the files of the app target's build phase of this kind."""
    (target,) = [obj for obj in objects.values() if obj["isa"] == "PBXNativeTarget"]
    (phase,) = [objects[p] for p in target["buildPhases"] if objects[p]["isa"] == isa]
    refs = [objects[objects[build]["fileRef"]] for build in phase["files"]]
    return {Path(ref["path"]).name: ref["path"] for ref in refs}


def test_target_compiles_every_swift_file_and_the_model_and_bundles_the_icons():
    objects = parse_project()["objects"]
    sources = target_phase_files(objects, "PBXSourcesBuildPhase")
    # Every Swift file of the app's folder, and the package's library: one copy of the Foundation-only
    # code, compiled by the app from the package's folder.
    library = PACKAGE / "Sources" / "DigitNormalizer"
    for path in [*(APP / "MNISTDraw").glob("*.swift"), *library.glob("*.swift")]:
        assert path.name in sources, f"{path.name} is not in the app target's Sources phase"
        assert (APP / "MNISTDraw" / sources[path.name]).resolve() == path.resolve(), sources[path.name]
    # Xcode compiles a Core ML model from the Sources phase (the .mlmodelc in the bundle and the class).
    assert (APP / "MNISTDraw" / sources["MNISTClassifier.mlpackage"] / "Manifest.json").is_file()
    resources = target_phase_files(objects, "PBXResourcesBuildPhase")
    assert resources == {"Assets.xcassets": "Assets.xcassets"}
    assert (APP / "MNISTDraw" / "Assets.xcassets" / "Contents.json").is_file()


def build_settings(objects: dict) -> list[dict]:
    """The app target's build settings, one dictionary per configuration, with the project's beneath."""
    (project,) = [obj for obj in objects.values() if obj["isa"] == "PBXProject"]
    (target,) = [obj for obj in objects.values() if obj["isa"] == "PBXNativeTarget"]
    base = {objects[c]["name"]: objects[c]["buildSettings"]
            for c in objects[project["buildConfigurationList"]]["buildConfigurations"]}
    return [{**base[objects[c]["name"]], **objects[c]["buildSettings"]}
            for c in objects[target["buildConfigurationList"]]["buildConfigurations"]]


def test_swift_version_and_deployment_target_agree_with_the_readme():
    readme = (APP / "README.md").read_text()
    for settings in build_settings(parse_project()["objects"]):
        assert settings["SWIFT_VERSION"] == "6.0"  # Swift 6 language mode: Xcode 16 or newer
        assert settings["IPHONEOS_DEPLOYMENT_TARGET"] == "16.0"
    assert "Xcode 16 or newer" in readme and "Xcode 15" not in readme
    assert "iOS 16+" in readme


def test_the_broken_project_of_round_3_is_refused():
    """Two object definitions pasted inside a group's children list (round 3's damage): the parser
    refuses it, as Xcode did."""
    damaged = PROJECT.replace("children = (\n", "children = (\n\t\t\t\tA20000000000000000000008 /* Assets.xcassets */ = "
                              "{isa = PBXFileReference; path = Assets.xcassets; sourceTree = \"<group>\"; };\n", 1)
    with pytest.raises(Exception):
        parse_project(damaged)


def test_bundle_identifier_is_a_setting_each_developer_changes():
    assert PROJECT.count('PRODUCT_BUNDLE_IDENTIFIER = "$(BUNDLE_ID_PREFIX).MNISTDraw";') == 2
    assert "BUNDLE_ID_PREFIX = com.example;" in PROJECT
    assert "BUNDLE_ID_PREFIX" in (APP / "README.md").read_text()


def test_swift_uses_the_exported_model_contract():
    from digitkit.classifier import load_classifier
    from digitkit.deps import coremltools

    reader = SWIFT["DigitReader.swift"]
    # Whichever compiled model the bundle holds, so a model of other classes (another file name) works.
    assert 'forResourcesWithExtension: "mlmodelc"' in reader and "MLModel(contentsOf:" in reader
    assert "VNClassificationObservation" in reader
    assert "modelDescription.classLabels" in reader  # labels come from the model, in its order
    assert "count: 10" not in reader and "0..<10" not in reader + SWIFT["ContentView.swift"]
    package = APP / "MNISTDraw" / "MNISTClassifier.mlpackage"
    assert package.is_dir(), "export a model into the app: digitkit export RUN -o apps/ios/MNISTDraw/MNISTClassifier.mlpackage"
    spec = coremltools().utils.load_spec(str(package))
    assert spec.description.input[0].name == "image"
    assert spec.description.input[0].type.imageType.width == py.FIELD
    assert spec.description.predictedProbabilitiesName == PROBS_OUTPUT
    assert load_classifier(package).labels == [str(d) for d in range(10)]


def test_the_model_the_app_ships_reads_what_the_default_reads(mnist, real_handwriting):
    """The app's model is a current default (`digitkit export RUN --format coreml --precision fp16`):
    it reads MNIST and, learnt from scans of MNIST's own digits, a 1 a form processor stretched to
    fill its box (a round-1 model read 22% of them, session 8's default 71%, session 9's 93%). Read
    by digitkit's own Core ML reader."""
    import numpy as np

    from digitkit.classifier import load_classifier

    model = load_classifier(APP / "MNISTDraw" / "MNISTClassifier.mlpackage")
    assert (model.predict(mnist.x_test[:1000]).argmax(1) == mnist.y_test[:1000]).mean() >= 0.99
    rng = np.random.default_rng(0)
    ones = [real_handwriting.mnist_scan(one, rng, stretched=True) for one in mnist.x_test[mnist.y_test == 1][:100]]
    read = model.predict(np.stack([py.normalize(scan).image for scan in ones])).argmax(1)
    assert (read == 1).mean() >= 0.85


def test_app_behaviour_the_issue_asked_for():
    reader, view = SWIFT["DigitReader.swift"], SWIFT["ContentView.swift"]
    assert "targetEnvironment(simulator)" in reader and ".cpuOnly" in reader  # Vision on the Simulator
    assert "actor Engine" in reader and "await engine.read" in reader  # predictions off the main thread
    state = (PACKAGE / "Sources" / "DigitNormalizer" / "ReadingState.swift").read_text()
    assert 'static var prompt: String { "Draw a digit in the box." }' in state
    # The model's load error and the drawing waiting for the model live in ReadingState (tested by
    # `swift test`); the reader reads the waiting drawing once the model is loaded.
    assert "ReadingState<[[CGPoint]]>" in reader and "state.modelLoaded()" in reader and "state.modelFailed(" in reader
    # A cancelled gesture ends the stroke too: @GestureState resets on cancel, onEnded is not called.
    assert "@GestureState private var touching" in view and "if !isTouching { pad.lift() }" in view
    assert "Not sure" in view and "runnerUp" in view
    # Number mode: the package's reader, every digit of an image through Core ML in one batch, a
    # photo from the library or the camera (which needs its usage string in the generated Info.plist).
    number = SWIFT["NumberMode.swift"]
    assert "NumberReader.read(" in number and "model.predictions(from: MLArrayBatchProvider" in number
    assert "PhotosPicker" in number and "sourceType = .camera" in number and "NumberView(reader: reader)" in view
    assert PROJECT.count("INFOPLIST_KEY_NSCameraUsageDescription") == 2
    # A number written small in a large photo is read again closer, as `digitkit read` does: the
    # package's region (compared with Python's in tests/test_swift.py), the boxes moved back.
    assert "NumberReader.zoomRegion(first, full: pixels.full, width: pixels.width)" in number
    assert "PhotoPixels(image, region: region)" in number and ".shifted(x: region.x, y: region.y)" in number


def test_thresholds_and_words_match_the_web_page():
    for name, value in (("sureAbove", SURE_ABOVE), ("notAClassBelow", NOT_A_CLASS_BELOW)):
        match = re.search(rf"static let {name}: Float = ([0-9.]+)", VERDICT)
        assert match and float(match.group(1)) == value, name
    assert "That doesn't look like a digit" in VERDICT
    assert "verdict == .notAClass" in SWIFT["ContentView.swift"] and "Verdict.notAClassMessage" in SWIFT["ContentView.swift"]


def test_app_builds_in_swift_6_mode_for_every_orientation_with_an_icon():
    assert PROJECT.count("SWIFT_VERSION = 6.0;") == 2 and "SWIFT_VERSION = 5" not in PROJECT
    reader = SWIFT["DigitReader.swift"]
    assert "struct Result: @unchecked Sendable" in reader and "struct Problem: LocalizedError, Sendable" in reader
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
        assert imports <= {"Foundation", "DigitNormalizer", "RawImages"}, f"{path}: {imports}"  # the package's own targets


@pytest.mark.parametrize("swift_name, python_name", [
    ("field", "FIELD"), ("box", "BOX"), ("noiseFraction", "NOISE_FRACTION"), ("speckFraction", "SPECK_FRACTION"),
    ("minContrast", "MIN_CONTRAST"), ("targetStroke", "TARGET_STROKE"), ("thinStroke", "THIN_STROKE"),
])
def test_constants_match(swift_name, python_name):
    match = re.search(rf"static let {swift_name}(?:: \w+)? = ([0-9.]+)", NORMALIZER)
    assert match, swift_name
    assert float(match.group(1)) == getattr(py, python_name)


def _body(source: str, start: str) -> str:
    body = source[source.index(start):]
    return body[: body.index("\n    }\n")]


def test_steps_are_in_the_documented_order():
    calls = re.findall(r"(inkMap|minContrast|clean|fit)\(?", _body(NORMALIZER, "static func normalize("))
    assert calls == ["inkMap", "minContrast", "clean", "fit"]
    assert re.findall(r"(thicken|scale|centre)\(", _body(NORMALIZER, "static func fit(")) == ["scale", "thicken", "centre"]


@pytest.mark.parametrize("swift_name, python_name", [
    ("maxDigits", "MAX_DIGITS"), ("maxParts", "MAX_PARTS"), ("joinedWidth", "JOINED_WIDTH"), ("joinGap", "JOIN_GAP"),
    ("joinDoubt", "JOIN_DOUBT"), ("speck", "SPECK"), ("short", "SHORT"), ("splitFrom", "SPLIT_FROM"),
    ("mustSplit", "MUST_SPLIT"), ("wide", "WIDE"), ("tall", "TALL"), ("digitBonus", "DIGIT_BONUS"), ("low", "LOW"), ("sheet", "SHEET"), ("desk", "DESK"), ("writing", "WRITING"),
    ("cuts", "CUTS"), ("zoomBelow", "ZOOM_BELOW"), ("sureDigit", "SURE_DIGIT"), ("speckled", "SPECKLED"), ("line", "LINE"), ("tiltSteps", "TILT_STEPS"), ("tilted", "TILTED"),
])
def test_number_reader_constants_match(swift_name, python_name):
    from digitkit.predict import ink, numbers

    source = "".join((PACKAGE / "Sources" / "DigitNormalizer" / name).read_text() for name in ("NumberReader.swift", "LineInk.swift"))
    match = re.search(rf"static let {swift_name}(?:: \w+)? = ([0-9.]+)", source)
    assert match, swift_name
    assert float(match.group(1)) == getattr(numbers if hasattr(numbers, python_name) else ink, python_name)


def test_swift_package_checks_every_vector():
    tests = (PACKAGE / "Tests" / "DigitNormalizerTests" / "VectorTests.swift").read_text()
    assert "docs/preprocessing_vectors.json" in tests and "DigitNormalizer.normalize(" in tests
    names = [case["name"] for case in json.loads(VECTORS.read_text())]
    for needed in ("speck removal", "thickening", "no thickening"):
        assert any(needed in name for name in names), needed
    assert "swift test" in (APP / "README.md").read_text()
