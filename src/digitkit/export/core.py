"""Export a run's Keras model to Core ML and ONNX files (written atomically)."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from digitkit import DigitkitError, __version__
from digitkit.runs import MODEL_FILE, Run, atomic_path, load_keras_model

FORMATS = {"coreml": ".mlpackage", "coreml-nn": ".mlmodel", "onnx": ".onnx"}
PRECISIONS = ("fp32", "fp16")
COMPRESSIONS = ("none", "int8", "palettize4")
MIN_IOS = "iOS16"  # ML Program with fp16 and compressed (constexpr) weights; the iOS app's target too
PREVIEW_KEY = "com.apple.coreml.model.preview.type"
PROBS_OUTPUT = "classLabelProbs"
INPUT_DESCRIPTION = ("28x28 grayscale image of one digit: white (255) ink on black (0), the digit "
                     "fitted to 20x20 and centred by centre of mass, as MNIST (docs/preprocessing.md)")


@dataclass
class ExportSource:
    """A trained Keras model and what the export records about it."""

    model: object
    name: str
    dataset: str = "mnist"
    class_names: tuple[str, ...] = tuple(str(d) for d in range(10))
    test_accuracy: float | None = None
    run: Run | None = None

    @classmethod
    def load(cls, path: str | Path) -> "ExportSource":
        """From a run folder (or its model.keras) or any ``.keras`` file."""
        from digitkit.data import SPECS

        path = Path(path)
        if path.is_dir() or path.name == MODEL_FILE:
            run = Run.open(path)
            config = run.config
            metrics = run.read_json("metrics.json") if (run.path / "metrics.json").exists() else {}
            dataset = config.get("dataset", "mnist")
            return cls(run.load_model(), run.name, dataset, SPECS[dataset].class_names,
                       metrics.get("test_accuracy"), run)
        if path.suffix != ".keras":
            raise DigitkitError(f"{path}: export takes a run folder or a .keras file")
        return cls(load_keras_model(path), path.stem)

    @property
    def model_name(self) -> str:
        return "MNISTClassifier" if self.dataset == "mnist" else "FashionMNISTClassifier"


def default_output(source: ExportSource, fmt: str, suffix: str = "") -> Path:
    folder = source.run.path if source.run else Path(".")
    return folder / f"{source.model_name}{suffix}{FORMATS[fmt]}"


def _check_options(fmt: str, precision: str, compress: str) -> None:
    if fmt not in FORMATS:
        raise DigitkitError(f"unsupported format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise DigitkitError(f"unsupported precision {precision!r}; choose fp32 or fp16")
    if compress not in COMPRESSIONS:
        raise DigitkitError(f"unsupported compression {compress!r}; choose one of: {', '.join(COMPRESSIONS)}")
    if fmt == "onnx" and (precision, compress) != ("fp32", "none"):
        raise DigitkitError("ONNX export is fp32 only; drop --precision/--compress")
    if fmt == "coreml-nn" and compress != "none":
        raise DigitkitError("--compress needs the ML Program format (--format coreml); "
                            "NeuralNetwork files support --precision fp16 only")


def export(source: ExportSource | str | Path, fmt: str = "coreml", output: str | Path | None = None,
           precision: str = "fp32", compress: str = "none") -> Path:
    """Export to ``fmt`` and return the written path. ``output`` may be a file path or a folder."""
    _check_options(fmt, precision, compress)
    if not isinstance(source, ExportSource):
        source = ExportSource.load(source)
    out = Path(output) if output is not None else default_output(source, fmt)
    if out.is_dir() and out.suffix != FORMATS[fmt]:
        out = out / f"{source.model_name}{FORMATS[fmt]}"
    elif out.suffix != FORMATS[fmt]:
        raise DigitkitError(f"{out}: a {fmt} file must end in {FORMATS[fmt]}")
    if not out.parent.is_dir():
        raise DigitkitError(f"{out.parent}: folder does not exist")
    with atomic_path(out) as tmp:
        if fmt == "onnx":
            _write_onnx(source, tmp)
        else:
            _coreml_model(source, fmt, precision, compress).save(str(tmp))
    return out


# -- Core ML -----------------------------------------------------------------------------------
def _coreml_model(source: ExportSource, fmt: str, precision: str, compress: str):
    from digitkit.deps import coremltools
    from digitkit.export.torch_graph import exported_program

    ct = coremltools()
    kwargs = dict(
        inputs=[ct.ImageType(name="image", shape=(1, 1, 28, 28), scale=1 / 255.0, bias=0.0,
                             color_layout=ct.colorlayout.GRAYSCALE)],
        classifier_config=ct.ClassifierConfig(list(source.class_names)),
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
            mlmodel = ct.convert(exported_program(source.model), **kwargs)
        except Exception as err:  # converter failures come in many types
            raise DigitkitError(f"Core ML conversion failed: {type(err).__name__}: {err}") from None
        if fmt == "coreml-nn" and precision == "fp16":
            from coremltools.models.neural_network import quantization_utils

            with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per layer
                mlmodel = quantization_utils.quantize_weights(mlmodel, nbits=16)
        if compress != "none":
            mlmodel = _compress(mlmodel, compress)
    return _describe(mlmodel, source, fmt, precision, compress)


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


def _describe(mlmodel, source: ExportSource, fmt: str, precision: str, compress: str):
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
    what = "digit" if source.dataset == "mnist" else "Fashion-MNIST item"
    mlmodel.short_description = (f"Classifies a handwritten {what} in a 28x28 grayscale image "
                                 f"(digitkit {source.name}, {source.dataset}).")
    mlmodel.author = "digitkit"
    mlmodel.license = "MIT (model); training data MNIST, CC BY-SA 3.0"
    mlmodel.version = __version__
    mlmodel.input_description["image"] = INPUT_DESCRIPTION
    mlmodel.output_description["classLabel"] = "Most likely class"
    mlmodel.output_description[PROBS_OUTPUT] = "Probability of each class"
    meta = mlmodel.user_defined_metadata
    meta[PREVIEW_KEY] = "imageClassifier"
    meta["dataset"] = source.dataset
    meta["run"] = source.name
    if source.test_accuracy is not None:
        meta["test_accuracy"] = f"{source.test_accuracy:.4f}"
    meta["digitkit_version"] = __version__
    meta["keras_version"] = keras.__version__
    meta["precision"] = precision
    meta["compression"] = compress
    meta["input_polarity"] = "white ink on black background"
    return mlmodel


# -- ONNX --------------------------------------------------------------------------------------
def _write_onnx(source: ExportSource, path: Path) -> None:
    import keras
    import onnx
    import torch

    from digitkit.export.torch_graph import NCHWImageModel

    module = NCHWImageModel(source.model).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter: the dynamo one needs onnxscript and gains nothing here.
        torch.onnx.export(module, (torch.zeros(1, 1, 28, 28),), str(path), input_names=["image"],
                          output_names=["probabilities"], opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}})
    model = onnx.load(str(path))
    model.doc_string = ("Input 'image': float32 [batch, 1, 28, 28], pixel/255 in 0..1, white ink on black, "
                        "MNIST-style (docs/preprocessing.md). Output 'probabilities': float32 [batch, "
                        f"{len(source.class_names)}] in label order.")
    meta = {"labels": ",".join(source.class_names), "dataset": source.dataset, "run": source.name,
            "digitkit_version": __version__, "keras_version": keras.__version__,
            "input_scale": "1/255", "input_polarity": "white ink on black background"}
    if source.test_accuracy is not None:
        meta["test_accuracy"] = f"{source.test_accuracy:.4f}"
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# -- all variants --------------------------------------------------------------------------------
VARIANTS = [
    ("coreml", "fp32", "none"), ("coreml", "fp16", "none"), ("coreml", "fp32", "int8"),
    ("coreml", "fp32", "palettize4"), ("coreml-nn", "fp32", "none"), ("coreml-nn", "fp16", "none"),
    ("onnx", "fp32", "none"),
]


def export_all(source: ExportSource | str | Path, out_dir: str | Path | None = None, progress=None,
               limit: int | None = None) -> dict:
    """Write every variant, verify each (on the first ``limit`` test images; default all), and write
    a table (Markdown + JSON) of size, accuracy and agreement."""
    from digitkit.runs import atomic_write_bytes, atomic_write_json
    from digitkit.verify import Reference, verify

    if not isinstance(source, ExportSource):
        source = ExportSource.load(source)
    out_dir = Path(out_dir) if out_dir else (source.run.path if source.run else Path(".")) / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = Reference.of(source, limit)  # the Keras predictions, computed once for all variants
    rows = []
    for fmt, precision, compress in VARIANTS:
        suffix = "" if (precision, compress) == ("fp32", "none") else f"-{precision}" + (
            f"-{compress}" if compress != "none" else "")
        path = export(source, fmt, out_dir / f"{source.model_name}{suffix}{FORMATS[fmt]}", precision, compress)
        report = verify(path, reference)
        rows.append({"format": fmt, "precision": precision, "compression": compress, "file": path.name,
                     "size_bytes": report["size_bytes"], "test_accuracy": report["test_accuracy"],
                     "agreement": report["agreement"], "max_abs_diff": report["max_abs_diff"]})
        if progress:
            progress(rows[-1])
    keras_acc = report["keras_test_accuracy"]
    table = {"run": source.name, "keras_test_accuracy": keras_acc, "variants": rows}
    lines = [f"# Export variants of {source.name} (Keras test accuracy {keras_acc:.2%})", "",
             "| format | precision | compression | file | size | test accuracy | agreement | max abs Δp |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['precision']} | {r['compression']} | {r['file']} | "
                     f"{r['size_bytes'] / 1024:.1f} KiB | {r['test_accuracy']:.2%} | {r['agreement']:.2%} | "
                     f"{r['max_abs_diff']:.2e} |")
    atomic_write_bytes(out_dir / "variants.md", ("\n".join(lines) + "\n").encode())
    atomic_write_json(out_dir / "variants.json", table)
    return table


def file_size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
