"""digitkit's own Core ML interpreter: run ``.mlpackage`` (ML Program) and ``.mlmodel``
(NeuralNetwork or ML Program) files on any OS, with NumPy.

coremltools can write Core ML files on Linux but cannot run them; this reads the protobuf spec and
the weight blobs itself and executes them, including the image input's preprocessing and the
classifier outputs, so an exported file can be checked where it was made.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.coreml.package import MAX_SPEC_BYTES, package_model, read_bounded


def _read_spec(path: Path):
    from digitkit.deps import coremltools

    Model_pb2 = coremltools().proto.Model_pb2  # the schema only; nothing of coremltools' runtime

    spec = Model_pb2.Model()
    blob = read_bounded(path, MAX_SPEC_BYTES, "model spec")
    try:
        spec.ParseFromString(blob)
    except Exception as err:  # protobuf raises DecodeError and friends
        raise DigitkitError(f"{path}: not a Core ML model file ({type(err).__name__}: {err})") from None
    if not spec.HasField("description"):
        raise DigitkitError(f"{path}: not a Core ML model file (no model description)")
    return spec


@dataclass
class Outputs:
    labels: list[str]
    probabilities: np.ndarray  # (N, classes), in class-label order


class CoreMLModel:
    """A loaded Core ML image classifier. ``predict(images)`` takes uint8 (N, H, W) grey images."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise DigitkitError(f"{self.path}: model file not found")
        if self.path.is_dir():
            model_file = package_model(self.path)
            weights_dir = model_file.parent / "weights"
            self.package_root = self.path.resolve()
        else:
            model_file, weights_dir = self.path, None
            self.package_root = None
        self.spec = _read_spec(model_file)
        description = self.spec.description
        self.input = description.input[0]
        if self.input.type.WhichOneof("Type") != "imageType":
            raise DigitkitError(f"{self.path}: input '{self.input.name}' is not an image; digitkit verifies image classifiers")
        image = self.input.type.imageType
        if image.colorSpace != 10:  # GRAYSCALE
            raise DigitkitError(f"{self.path}: input image is not grayscale")
        self.height, self.width = int(image.height), int(image.width)
        self.kind = self.spec.WhichOneof("Type")
        self.label_name = description.predictedFeatureName
        self.probs_name = description.predictedProbabilitiesName
        if self.kind == "mlProgram":
            from digitkit.coreml.mlprogram import MLProgram

            self.program = MLProgram(self.spec, weights_dir, self.package_root)
        elif self.kind in ("neuralNetworkClassifier", "neuralNetwork"):
            self.nn = getattr(self.spec, self.kind)
        else:
            raise DigitkitError(f"{self.path}: Core ML model type '{self.kind}' is not supported "
                                "(digitkit runs ML Programs and NeuralNetworks)")

    @functools.cached_property
    def class_labels(self) -> list[str]:
        if self.kind == "neuralNetworkClassifier":
            labels = self.nn.WhichOneof("ClassLabels")
            return [str(v) for v in getattr(self.nn, labels).vector] if labels else []
        for op in self.program.block.operations:
            if op.type == "classify":
                classes = op.inputs["classes"].arguments[0]
                value = self.program.constants.get(classes.name) if classes.name else self.program._value(classes.value)
                return [str(c) for c in np.asarray(value).reshape(-1)]
        return []

    def _nn_preprocess(self, x: np.ndarray) -> np.ndarray:
        for pre in self.nn.preprocessing:
            if pre.featureName in ("", self.input.name) and pre.WhichOneof("preprocessor") == "scaler":
                scaler = pre.scaler
                scale = scaler.channelScale if scaler.channelScale != 0 else 1.0
                return x * scale + scaler.grayBias
        return x

    def predict(self, images: np.ndarray, batch_size: int = 500) -> Outputs:
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if images.shape[1:] != (self.height, self.width):
            raise DigitkitError(f"images are {images.shape[1:]}, the model takes {self.height}x{self.width}")
        labels, probs = [], []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].astype(np.float32)[:, None]  # N, 1, H, W pixel values
            batch_labels, batch_probs = self._predict_batch(x)
            labels += batch_labels
            probs.append(batch_probs)
        return Outputs(labels, np.concatenate(probs))

    def _predict_batch(self, x: np.ndarray):
        if self.kind == "mlProgram":
            outputs = self.program.run({self.input.name: x})
            return outputs[self.label_name], self._dicts_to_array(outputs[self.probs_name])
        from digitkit.coreml.neuralnetwork import run_layers

        env = run_layers(self.nn, {self.input.name: self._nn_preprocess(x)})
        if self.kind == "neuralNetworkClassifier":
            probs_blob = self.nn.labelProbabilityLayerName or self.nn.layers[-1].output[0]
            probs = env[probs_blob].reshape(len(x), -1)
            labels = self.class_labels
            return [labels[i] for i in probs.argmax(1)], probs
        return [], env[self.nn.layers[-1].output[0]].reshape(len(x), -1)

    def _dicts_to_array(self, dicts: list[dict]) -> np.ndarray:
        labels = self.class_labels
        return np.array([[d[label] for label in labels] for d in dicts], np.float32)
