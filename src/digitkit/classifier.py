"""One shape for a loaded model, whatever its format.

A :class:`Classifier` has a ``name``, its class ``labels`` (in output order), the ``input_size`` it
reads (28×28 grey, white ink on black, MNIST-style; docs/preprocessing.md) and
``predict(images uint8 (N, H, W)) → probabilities float32 (N, len(labels))``. There is one
implementation per format: :class:`KerasClassifier` (a run folder or a ``.keras`` file; also "the
trained model" that export converts), :class:`OnnxClassifier` (onnxruntime) and
:class:`CoreMLClassifier` (digitkit's own Core ML runtime). Evaluate, export, verify, predict and
serve all take one; :func:`load_classifier` opens any of them from a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from digitkit import DigitkitError
from digitkit.data.datasets import DIGIT_LABELS
from digitkit.litert_metadata import read_metadata
from digitkit.runs import MODEL_FILE, Run, load_keras_model, number_or_none

INPUT_SIZE = (28, 28)
# What the top probability means to a person. digitkit's digit models learn drawings that are not
# digits as equal probabilities (train._loss), so a top class below NOT_A_CLASS_BELOW is "that is not
# a digit at all"; between it and SURE_ABOVE the answer is shown "not sure", with the runner-up.
SURE_ABOVE = 0.9
NOT_A_CLASS_BELOW = 0.5


def verdict(confidence: float) -> str:
    """"sure", "not sure" or "not a class" (for digit models: not a digit) for a top probability."""
    if confidence >= SURE_ABOVE:
        return "sure"
    return "not sure" if confidence >= NOT_A_CLASS_BELOW else "not a class"


def not_a_class_message(labels: list[str]) -> str:
    """What the page, the CLI and the app say for a drawing of no class."""
    return "That doesn't look like a digit" if list(labels) == DIGIT_LABELS else \
        "That doesn't look like any of the classes"


class Classifier(Protocol):
    name: str
    labels: list[str]
    format: str
    test_accuracy: float | None

    @property
    def input_size(self) -> tuple[int, int]: ...

    def predict(self, images: np.ndarray) -> np.ndarray: ...


def _check_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1:] != size:
        raise DigitkitError(f"images must be uint8 (N, {size[0]}, {size[1]}), got shape {images.shape}")
    return images


def _check_output(path, probs: np.ndarray, labels: list[str]) -> np.ndarray:
    if probs.ndim != 2 or probs.shape[1] != len(labels):
        raise DigitkitError(f"{path}: the model outputs {list(probs.shape[1:])} values per image for "
                            f"{len(labels)} labels")
    return probs.astype(np.float32, copy=False)


def _labels_from_metadata(path, labels: list[str] | None, width) -> list[str]:
    """The labels an exported file records (ONNX and LiteRT metadata); a file without them must have
    the ten digits' outputs. ``width``: how many values the model outputs per image, if known."""
    if labels is None and width != 10:
        raise DigitkitError(f"{path}: no 'labels' in the model's metadata, and its {width} outputs are not "
                            "the ten digits; export it with digitkit (which records the labels)")
    labels = _check_labels(path, labels if labels is not None else DIGIT_LABELS)
    if isinstance(width, int) and width != len(labels):
        raise DigitkitError(f"{path}: the model outputs {width} values for {len(labels)} labels")
    return labels


def _accuracy(value) -> float | None:
    """A test accuracy from metadata (a number or its text), or None."""
    try:
        return number_or_none(float(value)) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _check_labels(path, labels) -> list[str]:
    if len(labels) < 2 or len(set(labels)) != len(labels) or not all(isinstance(v, str) and v for v in labels):
        raise DigitkitError(f"{path}: the model's class labels {labels!r} are not at least two distinct names")
    return list(labels)


@dataclass
class KerasClassifier:
    """A trained Keras model with what is known about it (labels, dataset, test accuracy, run)."""

    model: object
    name: str
    labels: list[str] = field(default_factory=lambda: list(DIGIT_LABELS))
    dataset: str = "mnist"
    test_accuracy: float | None = None
    run: Run | None = None
    format: str = "keras"

    def __post_init__(self):
        shape = tuple(self.model.input_shape[1:])
        if shape != (*INPUT_SIZE, 1):
            raise DigitkitError(f"{self.name}: the Keras model takes inputs of shape {shape}; digitkit models "
                                f"take {(*INPUT_SIZE, 1)} images")
        outputs = self.model.output_shape[-1]
        if outputs != len(self.labels):
            raise DigitkitError(f"{self.name}: the Keras model has {outputs} outputs for {len(self.labels)} labels")

    @property
    def input_size(self) -> tuple[int, int]:
        return INPUT_SIZE

    @classmethod
    def load(cls, path: str | Path) -> "KerasClassifier":
        """From a run folder (or its model.keras) or any ``.keras`` file."""
        path = Path(path)
        if path.suffix != ".keras" or path.name == MODEL_FILE:
            run = Run.open(path)
            return cls(run.load_model(), run.name, run.labels, run.dataset, run.test_accuracy, run)
        model = load_keras_model(path)
        return cls(model, path.stem, [str(d) for d in range(model.output_shape[-1])])

    def predict(self, images: np.ndarray) -> np.ndarray:
        from digitkit.inference import predict_images

        return predict_images(self.model, _check_images(images, INPUT_SIZE))


class OnnxClassifier:
    """An ONNX image classifier in onnxruntime; labels and test accuracy come from its metadata."""

    format = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort  # not onnx: reading the metadata through the session saves its import

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            props = dict(self.session.get_modelmeta().custom_metadata_map)
        except Exception as err:  # onnxruntime and onnx raise their own exception types
            raise DigitkitError(f"{self.path}: not a loadable ONNX model ({type(err).__name__}: {err})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise DigitkitError(f"{self.path}: expected one image input and a probabilities output, found "
                                f"{len(inputs)} input(s) and {len(outputs)} output(s)")
        shape = list(inputs[0].shape)
        if len(shape) != 4 or shape[1:] != [1, *INPUT_SIZE] or inputs[0].type != "tensor(float)":
            raise DigitkitError(f"{self.path}: input {inputs[0].name!r} is {inputs[0].type} {shape}; digitkit "
                                f"reads float [batch, 1, {INPUT_SIZE[0]}, {INPUT_SIZE[1]}] images")
        self.input_name = inputs[0].name
        width = outputs[0].shape[-1] if outputs[0].shape else None
        self.labels = _labels_from_metadata(self.path, props["labels"].split(",") if "labels" in props else None, width)
        self.test_accuracy = _accuracy(props.get("test_accuracy"))
        self.name = props.get("run", self.path.stem)

    @property
    def input_size(self) -> tuple[int, int]:
        return INPUT_SIZE

    def predict(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        images = _check_images(images, INPUT_SIZE)
        x = images.astype(np.float32)[:, None] / 255.0
        if not len(x):
            return np.zeros((0, len(self.labels)), np.float32)
        try:
            probs = np.concatenate([self.session.run(None, {self.input_name: x[i : i + batch_size]})[0]
                                    for i in range(0, len(x), batch_size)])
        except Exception as err:  # onnxruntime's own errors
            raise DigitkitError(f"{self.path}: onnxruntime failed ({type(err).__name__}: {err})") from None
        return _check_output(self.path, probs.reshape(len(x), -1), self.labels)


class CoreMLClassifier:
    """A Core ML image classifier, run by digitkit's Core ML runtime (:mod:`digitkit.coreml`)."""

    format = "coreml"

    def __init__(self, path: str | Path):
        from digitkit.coreml import CoreMLModel

        self.path = Path(path)
        self.model = CoreMLModel(self.path)
        if (self.model.height, self.model.width) != INPUT_SIZE:
            raise DigitkitError(f"{self.path}: the model reads {self.model.height}x{self.model.width} images; "
                                f"digitkit's are {INPUT_SIZE[0]}x{INPUT_SIZE[1]}")
        self.labels = _check_labels(self.path, self.model.class_labels)
        meta = self.model.spec.description.metadata.userDefined
        self.test_accuracy = _accuracy(meta.get("test_accuracy"))
        self.name = meta.get("run", self.path.stem)

    @property
    def input_size(self) -> tuple[int, int]:
        return INPUT_SIZE

    def predict(self, images: np.ndarray) -> np.ndarray:
        images = _check_images(images, INPUT_SIZE)
        if not len(images):
            return np.zeros((0, len(self.labels)), np.float32)
        return _check_output(self.path, self.model.predict(images).probabilities, self.labels)


MAX_LITERT_BYTES = 256 * 2**20  # read whole into memory: bound what one file can cost
class LiteRTClassifier:
    """A LiteRT (``.tflite``) image classifier in Google's LiteRT interpreter (``ai-edge-litert``,
    the optional extra ``digitkit[litert]``); labels and test accuracy come from digitkit's metadata
    in the file (export.litert). The interpreter runs one call at a time, so calls are serialised."""

    format = "litert"

    def __init__(self, path: str | Path, threads: int | None = None):
        import threading

        from digitkit.deps import litert, native_output_silenced

        Interpreter = litert("ai_edge_litert.interpreter", "Running a .tflite file").Interpreter

        self.path = Path(path)
        try:
            if self.path.is_file() and self.path.stat().st_size > MAX_LITERT_BYTES:
                raise DigitkitError(f"{self.path}: {self.path.stat().st_size / 2**20:,.0f} MiB is far larger than a "
                                    f"digit model (digitkit reads .tflite files up to {MAX_LITERT_BYTES // 2**20} MiB)")
            content = self.path.read_bytes()
            meta = read_metadata(content)
            with native_output_silenced():  # the interpreter announces its CPU delegate on stderr
                interpreter = Interpreter(model_content=content, num_threads=threads)
                self.runner = interpreter.get_signature_runner()
                inputs, outputs = self.runner.get_input_details(), self.runner.get_output_details()
                if list(inputs) == ["image"] and list(inputs["image"]["shape"]) == [1, 1, *INPUT_SIZE]:
                    self.runner(image=np.zeros((1, 1, *INPUT_SIZE), np.float32))  # the delegate starts here
        except DigitkitError:
            raise
        except Exception as err:  # the interpreter and the flatbuffer reader raise their own types
            raise DigitkitError(f"{self.path}: not a loadable LiteRT model ({type(err).__name__}: {err})") from None
        if list(inputs) != ["image"] or "probabilities" not in outputs:
            raise DigitkitError(f"{self.path}: expected an 'image' input and a 'probabilities' output, found inputs "
                                f"{list(inputs)} and outputs {list(outputs)}; export it with digitkit")
        shape = list(inputs["image"]["shape"])
        if shape[1:] != [1, *INPUT_SIZE] or inputs["image"]["dtype"] != np.float32:
            raise DigitkitError(f"{self.path}: input 'image' is {inputs['image']['dtype'].__name__} {shape}; "
                                f"digitkit reads float32 [1, 1, {INPUT_SIZE[0]}, {INPUT_SIZE[1]}] images")
        width = int(outputs["probabilities"]["shape"][-1])
        labels = meta.get("labels")
        self.labels = _labels_from_metadata(self.path, [str(v) for v in labels] if isinstance(labels, list) else None,
                                            width)
        value = meta.get("test_accuracy")
        self.test_accuracy = _accuracy(value) if isinstance(value, (int, float)) else None
        self.name = str(meta.get("run", self.path.stem))
        self._lock = threading.Lock()

    @property
    def input_size(self) -> tuple[int, int]:
        return INPUT_SIZE

    def predict(self, images: np.ndarray) -> np.ndarray:
        images = _check_images(images, INPUT_SIZE)
        x = images.astype(np.float32)[:, None, None] / 255.0  # (N, 1, 1, 28, 28): one image per call
        if not len(x):
            return np.zeros((0, len(self.labels)), np.float32)
        try:
            with self._lock:
                probs = np.concatenate([self.runner(image=one)["probabilities"] for one in x])
        except Exception as err:  # the interpreter's own errors
            raise DigitkitError(f"{self.path}: the LiteRT interpreter failed ({type(err).__name__}: {err})") from None
        return _check_output(self.path, probs.reshape(len(x), -1), self.labels)


def load_classifier(path: str | Path, threads: int | None = None) -> Classifier:
    """A run folder, ``.keras``, ``.onnx``, ``.mlpackage`` or ``.mlmodel`` as a :class:`Classifier`."""
    path = Path(path)
    if not path.exists():
        raise DigitkitError(f"{path}: model file not found; give a run folder, .keras, .onnx, .tflite, .mlpackage or .mlmodel")
    if path.suffix == ".onnx":
        return OnnxClassifier(path, threads)
    if path.suffix == ".tflite":
        return LiteRTClassifier(path, threads)
    if path.suffix in (".mlpackage", ".mlmodel"):
        return CoreMLClassifier(path)
    if path.is_dir() or path.suffix == ".keras":
        return KerasClassifier.load(path)
    raise DigitkitError(f"{path}: unsupported model file; give a run folder, .keras, .onnx, .tflite, .mlpackage or .mlmodel")
