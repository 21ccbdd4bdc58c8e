"""Stage 6: verify. Run an exported file on Linux and compare it with the Keras model it came from
on the 10,000 MNIST test images: top-1 agreement, max |Δ probability|, its own test accuracy, size."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from digitkit import DigitkitError


def load_exported(path: str | Path):
    """A callable ``images uint8 (N, 28, 28) → probabilities (N, classes)`` for an exported file."""
    path = Path(path)
    if not path.exists():
        raise DigitkitError(f"{path}: model file not found")
    if path.suffix == ".onnx":
        return _onnx_runner(path)
    if path.suffix in (".mlpackage", ".mlmodel"):
        from digitkit.verify.coreml import CoreMLModel

        model = CoreMLModel(path)
        return lambda images: model.predict(images).probabilities
    raise DigitkitError(f"{path}: unsupported model file; give a .mlpackage, .mlmodel or .onnx")


def _onnx_runner(path: Path):
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise DigitkitError(f"{path}: not a loadable ONNX model ({type(err).__name__}: {err})") from None
    name = session.get_inputs()[0].name

    def run(images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32)[:, None] / 255.0
        return np.concatenate([session.run(None, {name: x[i : i + 1000]})[0] for i in range(0, len(x), 1000)])

    return run


def _find_run(path: Path):
    from digitkit.runs import MODEL_FILE, Run

    for parent in [path.parent, *path.parents]:
        if (parent / MODEL_FILE).is_file():
            return Run.open(parent)
    raise DigitkitError(f"{path} is not inside a run folder; pass --against RUN (the run it was exported from)")


def verify(model_path: str | Path, against=None, limit: int | None = None) -> dict:
    """Compare an exported file with its Keras model on the test set; returns the report dict.

    ``against`` is a run folder, a ``.keras`` file or an ``ExportSource``; by default the run folder
    the exported file lies in.
    """
    from digitkit.data import load_dataset
    from digitkit.evaluate import predict_dataset
    from digitkit.export.core import ExportSource, file_size

    model_path = Path(model_path)
    runner = load_exported(model_path)
    if against is None:
        against = _find_run(model_path).path
    source = against if isinstance(against, ExportSource) else ExportSource.load(against)
    data = load_dataset(source.dataset)
    images, labels = data.x_test[:limit], data.y_test[:limit]
    reference = predict_dataset(source.model, images)
    start = time.perf_counter()
    probs = runner(images)
    seconds = time.perf_counter() - start
    if probs.shape != reference.shape:
        raise DigitkitError(f"{model_path}: outputs {probs.shape[1:]} values per image, the Keras model "
                            f"{reference.shape[1:]}")
    agree = probs.argmax(1) == reference.argmax(1)
    return {
        "model": str(model_path),
        "against": source.name,
        "images": int(len(images)),
        "agreement": float(agree.mean()),
        "disagreements": int((~agree).sum()),
        "max_abs_diff": float(np.abs(probs - reference).max()),
        "test_accuracy": float((probs.argmax(1) == labels).mean()),
        "keras_test_accuracy": float((reference.argmax(1) == labels).mean()),
        "size_bytes": file_size(model_path),
        "seconds": round(seconds, 2),
    }
