"""Stage 6: verify. Run an exported file on Linux and compare it with the Keras model it came from
on the test images: top-1 agreement, max |Δ probability|, its own test accuracy, size, pass/fail."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.classifier import Classifier, KerasClassifier, load_classifier
from digitkit.files import file_size

MIN_AGREEMENT = 0.99  # top-1 agreement an export needs to pass
# Beside an exported file, the Keras model's answers on its test images (X.mlpackage →
# X.reference.npz): whoever has only the exported file (a Teach download) can verify it.
REFERENCE_SUFFIX = ".reference.npz"


def reference_path(model_path: str | Path) -> Path:
    """Where the reference file of an exported model lies: beside it, named after its stem."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.split(".")[0] + REFERENCE_SUFFIX)


def _find_reference(path: Path):
    """The run folder ``path`` lies in, else the reference file beside it."""
    from digitkit.runs import MODEL_FILE

    for parent in [path.parent, *path.parents]:
        if (parent / MODEL_FILE).is_file():
            return parent
    beside = reference_path(path)
    if beside.is_file():
        return beside
    raise DigitkitError(f"{path} is not inside a run folder and has no {beside.name} beside it; say which run it "
                        "was exported from (--against RUN)")


@dataclass
class Reference:
    """The Keras model's probabilities on the (first ``limit``) test images of its run, to compare exports with."""

    name: str
    labels: list[str]
    images: np.ndarray
    truth: np.ndarray
    probs: np.ndarray

    @classmethod
    def of(cls, trained: KerasClassifier, limit: int | None = None) -> "Reference":
        if limit is not None and limit < 1:
            raise DigitkitError(f"limit must be at least 1, got {limit}")
        if trained.run is not None:
            images, truth = trained.run.test_split()
        else:
            from digitkit.data import load_dataset

            data = load_dataset(trained.dataset)
            images, truth = data.x_test, data.y_test
        images, truth = images[:limit], truth[:limit]
        return cls(trained.name, trained.labels, images, truth, trained.predict(images))

    def save(self, path: str | Path) -> None:
        from digitkit.files import atomic_path

        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as out:
            np.savez_compressed(out, name=self.name, labels=np.array(self.labels), images=self.images,
                                truth=self.truth, probs=self.probs)

    @classmethod
    def load(cls, path: str | Path, limit: int | None = None) -> "Reference":
        try:
            with np.load(path, allow_pickle=False) as saved:
                images, truth, probs = saved["images"], saved["truth"], saved["probs"]
                labels = [str(v) for v in saved["labels"]]
                ok = (images.ndim == 3 and images.dtype == np.uint8 and len(images) == len(truth) == len(probs)
                      and probs.shape[1:] == (len(labels),))
                if not ok:
                    raise ValueError("arrays of inconsistent shapes")
                return cls(str(saved["name"]), labels, images[:limit], truth[:limit], probs[:limit])
        except (OSError, KeyError, ValueError, EOFError) as err:
            raise DigitkitError(f"{path}: not a digitkit reference file ({err})") from None


def verify(model: str | Path | Classifier, against=None, limit: int | None = None,
           min_agreement: float = MIN_AGREEMENT) -> dict:
    """Compare an exported model with its Keras model on the test set; returns the report dict.

    ``against`` is a run folder, a ``.keras`` file, a reference file (``.reference.npz``), a
    :class:`KerasClassifier` or a :class:`Reference` (several exports of one model share one); by
    default the run folder the exported file lies in, else the reference file beside it.
    ``passed`` says whether top-1 agreement reached ``min_agreement``.
    """
    exported = model if not isinstance(model, (str, Path)) else load_classifier(model)
    path = Path(getattr(exported, "path", model if isinstance(model, (str, Path)) else exported.name))
    if against is None:
        against = _find_reference(path)
    if isinstance(against, (str, Path)) and str(against).endswith(REFERENCE_SUFFIX):
        against = Reference.load(against, limit)
    if not isinstance(against, Reference):
        trained = against if isinstance(against, KerasClassifier) else KerasClassifier.load(against)
        against = Reference.of(trained, limit)
    if exported.labels != against.labels:
        raise DigitkitError(f"{path}: its labels {exported.labels} differ from the Keras model's {against.labels}")
    start = time.perf_counter()
    probs = exported.predict(against.images)
    seconds = time.perf_counter() - start
    agree = probs.argmax(1) == against.probs.argmax(1)
    agreement = float(agree.mean())
    return {
        "model": str(path),
        "against": against.name,
        "images": int(len(against.images)),
        "agreement": agreement,
        "disagreements": int((~agree).sum()),
        "max_abs_diff": float(np.abs(probs - against.probs).max()),
        "test_accuracy": float((probs.argmax(1) == against.truth).mean()),
        "keras_test_accuracy": float((against.probs.argmax(1) == against.truth).mean()),
        "size_bytes": file_size(path) if path.exists() else None,
        "seconds": round(seconds, 2),
        "min_agreement": min_agreement,
        "passed": agreement >= min_agreement,
    }


def after_training(run, reference: bool = False, coreml: bool = False, on_onnx=None) -> tuple[Path, Path | None]:
    """What a trained run ships with, written in one place for `digitkit train` and the Teach page:
    its ONNX file (what predict and serve run), optionally the Keras model's answers on its test
    images beside it (so a downloaded export verifies on its own) and its Core ML package.
    ``on_onnx(path)`` is called as soon as the ONNX file is written (the slower Core ML export follows)."""
    from digitkit.export import export

    onnx = export(run.path, "onnx", run.export_path(".onnx"))
    if reference:
        Reference.of(KerasClassifier.load(run.path)).save(reference_path(onnx))
    if on_onnx is not None:
        on_onnx(onnx)
    package = export(run.path, "coreml", run.export_path(".mlpackage")) if coreml else None
    return onnx, package
