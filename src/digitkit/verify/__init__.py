"""Stage 6: verify. Run an exported file on Linux and compare it with the Keras model it came from
on the 10,000 MNIST test images: top-1 agreement, max |Δ probability|, its own test accuracy, size."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitkit import DigitkitError


class OnnxModel:
    """An ONNX image classifier in onnxruntime, with the labels and test accuracy its metadata holds."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnx
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            props = {p.key: p.value for p in onnx.load(str(self.path), load_external_data=False).metadata_props}
        except Exception as err:  # onnxruntime and onnx raise their own exception types
            raise DigitkitError(f"{self.path}: not a loadable ONNX model ({type(err).__name__}: {err})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.labels = props.get("labels", ",".join(map(str, range(10)))).split(",")
        self.test_accuracy = float(props["test_accuracy"]) if "test_accuracy" in props else None
        self.name = props.get("run", self.path.stem)

    def predict_batch(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Probabilities (N, classes) for uint8 (N, 28, 28) images."""
        x = images.astype(np.float32)[:, None] / 255.0
        return np.concatenate([self.session.run(None, {self.input_name: x[i : i + batch_size]})[0]
                               for i in range(0, len(x), batch_size)])

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Probabilities (classes,) for one uint8 (28, 28) image."""
        return self.predict_batch(image[None])[0]


def load_exported(path: str | Path):
    """``(predict, labels)`` for an exported file: ``predict(images uint8 (N, 28, 28)) → (N, classes)``."""
    path = Path(path)
    if not path.exists():
        raise DigitkitError(f"{path}: model file not found")
    if path.suffix == ".onnx":
        model = OnnxModel(path)
        return model.predict_batch, model.labels
    if path.suffix in (".mlpackage", ".mlmodel"):
        from digitkit.verify.coreml import CoreMLModel

        coreml = CoreMLModel(path)
        return (lambda images: coreml.predict(images).probabilities), coreml.class_labels
    raise DigitkitError(f"{path}: unsupported model file; give a .mlpackage, .mlmodel or .onnx")


def _find_run(path: Path):
    from digitkit.runs import MODEL_FILE, Run

    for parent in [path.parent, *path.parents]:
        if (parent / MODEL_FILE).is_file():
            return Run.open(parent)
    raise DigitkitError(f"{path} is not inside a run folder; pass --against RUN (the run it was exported from)")


@dataclass
class Reference:
    """The Keras model's probabilities on the (first ``limit``) test images, to compare exports with."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    probs: np.ndarray

    @classmethod
    def of(cls, source, limit: int | None = None) -> "Reference":
        from digitkit.data import load_dataset
        from digitkit.evaluate import predict_dataset

        data = load_dataset(source.dataset)
        images = data.x_test[:limit]
        return cls(source.name, images, data.y_test[:limit], predict_dataset(source.model, images))


def verify(model_path: str | Path, against=None, limit: int | None = None) -> dict:
    """Compare an exported file with its Keras model on the test set; returns the report dict.

    ``against`` is a run folder, a ``.keras`` file, an ``ExportSource`` or a :class:`Reference`
    (several exports of one model share one); by default the run folder the exported file lies in.
    """
    from digitkit.export.core import ExportSource, file_size

    model_path = Path(model_path)
    runner, _ = load_exported(model_path)
    if against is None:
        against = _find_run(model_path).path
    if not isinstance(against, Reference):
        against = Reference.of(against if isinstance(against, ExportSource) else ExportSource.load(against), limit)
    images, labels, reference = against.images, against.labels, against.probs
    start = time.perf_counter()
    probs = runner(images)
    seconds = time.perf_counter() - start
    if probs.shape != reference.shape:
        raise DigitkitError(f"{model_path}: outputs {probs.shape[1:]} values per image, the Keras model "
                            f"{reference.shape[1:]}")
    agree = probs.argmax(1) == reference.argmax(1)
    return {
        "model": str(model_path),
        "against": against.name,
        "images": int(len(images)),
        "agreement": float(agree.mean()),
        "disagreements": int((~agree).sum()),
        "max_abs_diff": float(np.abs(probs - reference).max()),
        "test_accuracy": float((probs.argmax(1) == labels).mean()),
        "keras_test_accuracy": float((reference.argmax(1) == labels).mean()),
        "size_bytes": file_size(model_path),
        "seconds": round(seconds, 2),
    }
