"""Export a trained Keras model to Core ML, ONNX and LiteRT files (written atomically)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from digitkit import DigitkitError, __version__
from digitkit.classifier import KerasClassifier
from digitkit.files import atomic_path
from digitkit.runs import model_file_stem

FORMATS = {"coreml": ".mlpackage", "coreml-nn": ".mlmodel", "onnx": ".onnx", "litert": ".tflite"}
PRECISIONS = ("fp32", "fp16", "int8")  # int8: LiteRT only (Core ML compresses with --compress int8)
COMPRESSIONS = ("none", "int8", "palettize4")
MIN_IOS = "iOS16"  # ML Program with fp16 and compressed (constexpr) weights; the iOS app's target too
PREVIEW_KEY = "com.apple.coreml.model.preview.type"
PROBS_OUTPUT = "classLabelProbs"
INPUT_DESCRIPTION = ("28x28 grayscale image of one digit: white (255) ink on black (0), the digit "
                     "fitted to 20x20 and centred by centre of mass, as MNIST (docs/preprocessing.md)")


def default_output(trained: KerasClassifier, fmt: str, suffix: str = "") -> Path:
    """Where an export goes by default: inside the run folder (or here, for a bare .keras file)."""
    if trained.run:
        return trained.run.export_path(f"{suffix}{FORMATS[fmt]}")
    return Path(f"{model_file_stem(trained.dataset)}{suffix}{FORMATS[fmt]}")


def _check_options(fmt: str, precision: str, compress: str) -> None:
    if fmt not in FORMATS:
        raise DigitkitError(f"unsupported format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise DigitkitError(f"unsupported precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if compress not in COMPRESSIONS:
        raise DigitkitError(f"unsupported compression {compress!r}; choose one of: {', '.join(COMPRESSIONS)}")
    if fmt == "onnx" and (precision, compress) != ("fp32", "none"):
        raise DigitkitError("ONNX export is fp32 only; drop --precision/--compress")
    if fmt == "litert" and compress != "none":
        raise DigitkitError("LiteRT files are made smaller with --precision fp16 or int8, not --compress")
    if fmt != "litert" and precision == "int8":
        raise DigitkitError("--precision int8 is for LiteRT (--format litert); for Core ML use --compress int8")
    if fmt == "coreml-nn" and compress != "none":
        raise DigitkitError("--compress needs the ML Program format (--format coreml); "
                            "NeuralNetwork files support --precision fp16 only")


def export(trained: KerasClassifier | str | Path, fmt: str = "coreml", output: str | Path | None = None,
           precision: str = "fp32", compress: str = "none") -> Path:
    """Export to ``fmt`` and return the written path. ``output`` may be a file path or a folder.

    An existing file of that format is replaced once the new one is complete; anything else at the
    output path (a folder that is not a Core ML package, a file of another kind) is left alone."""
    _check_options(fmt, precision, compress)
    if not isinstance(trained, KerasClassifier):
        trained = KerasClassifier.load(trained)
    out = Path(output) if output is not None else default_output(trained, fmt)
    if out.is_dir() and out.suffix != FORMATS[fmt]:
        out = out / f"{model_file_stem(trained.dataset)}{FORMATS[fmt]}"
    elif out.suffix != FORMATS[fmt]:
        raise DigitkitError(f"{out}: a {fmt} file must end in {FORMATS[fmt]}")
    if not out.parent.is_dir():
        raise DigitkitError(f"{out.parent}: folder does not exist")
    _check_replaceable(out)
    with atomic_path(out) as tmp:
        if fmt == "onnx":
            _write_onnx(trained, tmp)
        elif fmt == "litert":
            from digitkit.export.litert import write_litert

            write_litert(trained, tmp, precision)
        else:
            _coreml_model(trained, fmt, precision, compress).save(str(tmp))
    return out


def _check_replaceable(out: Path) -> None:
    if out.is_symlink():
        raise DigitkitError(f"{out} is a symbolic link; give another output path")
    if out.is_dir() and not (out.suffix == ".mlpackage" and (out / "Manifest.json").is_file()):
        raise DigitkitError(f"{out} is a folder that is not a Core ML package; it will not be replaced: "
                            "give another output path")
    if out.exists() and not (out.is_file() or out.is_dir()):
        raise DigitkitError(f"{out} is not a regular file; give another output path")


# -- Core ML -----------------------------------------------------------------------------------
def _coreml_model(trained: KerasClassifier, fmt: str, precision: str, compress: str):
    from digitkit.deps import coremltools
    from digitkit.export.torch_graph import exported_program

    ct = coremltools()
    kwargs = dict(
        inputs=[ct.ImageType(name="image", shape=(1, 1, 28, 28), scale=1 / 255.0, bias=0.0,
                             color_layout=ct.colorlayout.GRAYSCALE)],
        classifier_config=ct.ClassifierConfig(list(trained.labels)),
        skip_model_load=True,  # Core ML cannot load models on Linux; digitkit verify runs them
    )
    if fmt == "coreml":
        kwargs |= dict(convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, MIN_IOS),
                       compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32)
    else:
        kwargs |= dict(convert_to="neuralnetwork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            mlmodel = ct.convert(exported_program(trained.model), **kwargs)
        except Exception as err:  # converter failures come in many types
            raise DigitkitError(f"Core ML conversion failed: {type(err).__name__}: {err}") from None
        if fmt == "coreml-nn" and precision == "fp16":
            from coremltools.models.neural_network import quantization_utils

            with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per layer
                mlmodel = quantization_utils.quantize_weights(mlmodel, nbits=16)
        if compress != "none":
            mlmodel = _compress(mlmodel, compress)
    return _describe(mlmodel, trained, fmt, precision, compress)


def _compress(mlmodel, compress: str):
    import coremltools.optimize.coreml as cto

    if compress == "int8":
        op_config = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                                weight_threshold=0)
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=op_config))
    # iOS 16 LUTs are per tensor; the small first conv (600 weights) stays fp32, since 16 levels for
    # all its filters cost accuracy and compressing it saves almost nothing.
    op_config = cto.OpPalettizerConfig(nbits=4, mode="kmeans", granularity="per_tensor", weight_threshold=2048)
    return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=op_config))


def _describe(mlmodel, trained: KerasClassifier, fmt: str, precision: str, compress: str):
    import keras

    from digitkit.deps import coremltools

    ct = coremltools()
    spec = mlmodel.get_spec()
    old_probs = spec.description.predictedProbabilitiesName
    if old_probs != PROBS_OUTPUT:
        ct.utils.rename_feature(spec, old_probs, PROBS_OUTPUT)
    if fmt == "coreml":
        mlmodel = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)
    else:
        mlmodel = ct.models.MLModel(spec, skip_model_load=True)
    what = {"mnist": "handwritten digit", "fashion-mnist": "Fashion-MNIST item"}.get(trained.dataset, "drawing")
    mlmodel.short_description = (f"Classifies a {what} in a 28x28 grayscale image into "
                                 f"{len(trained.labels)} classes (digitkit {trained.name}, {trained.dataset}).")
    mlmodel.author = "digitkit"
    mlmodel.license = "MIT (model); training data MNIST, CC BY-SA 3.0"
    mlmodel.version = __version__
    mlmodel.input_description["image"] = INPUT_DESCRIPTION
    mlmodel.output_description["classLabel"] = "Most likely class"
    mlmodel.output_description[PROBS_OUTPUT] = "Probability of each class"
    meta = mlmodel.user_defined_metadata
    meta[PREVIEW_KEY] = "imageClassifier"
    meta["dataset"] = trained.dataset
    meta["run"] = trained.name
    if trained.test_accuracy is not None:
        meta["test_accuracy"] = f"{trained.test_accuracy:.4f}"
    meta["digitkit_version"] = __version__
    meta["keras_version"] = keras.__version__
    meta["precision"] = precision
    meta["compression"] = compress
    meta["input_polarity"] = "white ink on black background"
    return mlmodel


# -- ONNX --------------------------------------------------------------------------------------
def _write_onnx(trained: KerasClassifier, path: Path) -> None:
    import keras
    import onnx
    import torch

    from digitkit.export.torch_graph import NCHWImageModel

    module = NCHWImageModel(trained.model).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter: the dynamo one needs onnxscript and gains nothing here.
        torch.onnx.export(module, (torch.zeros(1, 1, 28, 28),), str(path), input_names=["image"],
                          output_names=["probabilities"], opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}})
    model = onnx.load(str(path))
    model.doc_string = ("Input 'image': float32 [batch, 1, 28, 28], pixel/255 in 0..1, white ink on black, "
                        "MNIST-style (docs/preprocessing.md). Output 'probabilities': float32 [batch, "
                        f"{len(trained.labels)}] in label order.")
    meta = {"labels": ",".join(trained.labels), "dataset": trained.dataset, "run": trained.name,
            "digitkit_version": __version__, "keras_version": keras.__version__,
            "input_scale": "1/255", "input_polarity": "white ink on black background"}
    if trained.test_accuracy is not None:
        meta["test_accuracy"] = f"{trained.test_accuracy:.4f}"
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
