"""Keras model → LiteRT (TensorFlow Lite) flatbuffer, for Android.

Converted by Google's ``litert-torch`` from the same torch program the ONNX and Core ML exports
start from; fp16 and int8 variants by Google's ``ai-edge-quantizer``: fp16 stores the weights as
float16 (computed in float32), int8 is dynamic-range quantisation (int8 weights per channel,
activations quantised on the fly by the runtime, so no calibration set is needed). Both libraries
come with the optional extra ``pip install "digitkit[litert]"``.

The file has the ONNX contract: one signature, input ``image`` float32 [1, 1, 28, 28] (pixel/255,
white ink on black), output ``probabilities`` float32 [1, classes] in label order. What the ONNX
file keeps in its metadata (labels, dataset, run, test accuracy) is in the flatbuffer's own
``metadata`` table, as JSON named "digitkit" (digitkit.litert_metadata writes and reads it).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

from digitkit import DigitkitError, __version__
from digitkit.litert_metadata import with_metadata
from digitkit.deps import litert, native_output_silenced

PRECISIONS = ("fp32", "fp16", "int8")


def write_litert(trained, path: Path, precision: str = "fp32") -> None:
    """Convert ``trained`` (a KerasClassifier) and write the ``.tflite`` file to ``path``."""
    if precision not in PRECISIONS:
        raise DigitkitError(f"unsupported LiteRT precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    model_bytes = _convert(trained)
    if precision != "fp32":
        model_bytes = _quantize(model_bytes, precision)
    path.write_bytes(with_metadata(model_bytes, _metadata(trained, precision)))


def _convert(trained) -> bytes:
    import torch

    from digitkit.export.torch_graph import NCHWImageModel

    module = NCHWImageModel(trained.model, output_name="probabilities").eval()
    with _quiet(), torch.no_grad():
        litert_torch = litert("litert_torch", "LiteRT export")
        try:
            # The keyword names the signature's input, the module's dict its output.
            edge = litert_torch.convert(module, sample_kwargs={"image": torch.zeros(1, 1, 28, 28)})
            return bytes(edge.model_content())
        except Exception as err:  # the converter raises many types
            raise DigitkitError(f"LiteRT conversion failed: {type(err).__name__}: {err}") from None


def _quantize(model_bytes: bytes, precision: str) -> bytes:
    with _quiet():
        litert("ai_edge_quantizer", "LiteRT fp16/int8 export")
        from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe, recipe_manager

    if precision == "int8":
        chosen = recipe.dynamic_wi8_afp32()
    else:  # weights stored as float16, dequantised to float32 when the model loads
        manager = recipe_manager.RecipeManager()
        manager.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                       num_bits=16, algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
        chosen = manager.get_quantization_recipe()
    with _quiet():
        result = quantizer.Quantizer(bytearray(model_bytes), chosen).quantize(enable_progress_report=False)
    return bytes(result.quantized_model)


def _metadata(trained, precision: str) -> dict:
    import keras

    meta = {"labels": list(trained.labels), "dataset": trained.dataset, "run": trained.name,
            "precision": precision, "digitkit_version": __version__, "keras_version": keras.__version__,
            "input": "image: float32 [1, 1, 28, 28], pixel/255 in 0..1, white ink on black, MNIST-style "
                     "(docs/preprocessing.md)",
            "output": f"probabilities: float32 [1, {len(trained.labels)}] in label order"}
    if trained.test_accuracy is not None:
        meta["test_accuracy"] = round(float(trained.test_accuracy), 4)
    return meta


@contextlib.contextmanager
def _quiet():
    """The converter and quantizer print progress lines, absl/TF logs (some from C++) and torch
    warnings; digitkit shows its own progress."""
    logging.getLogger("absl").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), native_output_silenced():
        warnings.simplefilter("ignore")
        yield
