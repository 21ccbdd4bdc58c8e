"""Every export variant of one model, each verified: a table of size, accuracy and agreement."""

from __future__ import annotations

from pathlib import Path

from digitkit.classifier import KerasClassifier
from digitkit.deps import LITERT_EXTRA, litert_installed
from digitkit.export import FORMATS, export, model_file_stem
from digitkit.files import atomic_write_bytes, atomic_write_json
from digitkit.verify import Reference, verify

VARIANTS = [
    ("coreml", "fp32", "none"), ("coreml", "fp16", "none"), ("coreml", "fp32", "int8"),
    ("coreml", "fp32", "palettize4"), ("coreml-nn", "fp32", "none"), ("coreml-nn", "fp16", "none"),
    ("onnx", "fp32", "none"), ("litert", "fp32", "none"), ("litert", "fp16", "none"), ("litert", "int8", "none"),
]


def export_variants(trained: KerasClassifier | str | Path, out_dir: str | Path | None = None, progress=None,
                    limit: int | None = None) -> dict:
    """Write every variant, verify each (on the first ``limit`` test images; default all), and write
    a table (Markdown + JSON) of size, accuracy and agreement into ``out_dir`` (default RUN/exports).
    The LiteRT rows need the optional extra; without it they are left out and ``skipped`` says why."""
    if not isinstance(trained, KerasClassifier):
        trained = KerasClassifier.load(trained)
    out_dir = Path(out_dir) if out_dir else (trained.run.path if trained.run else Path(".")) / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = Reference.of(trained, limit)  # the Keras predictions, computed once for all variants
    stem = model_file_stem(trained.dataset)
    rows = []
    variants, skipped = VARIANTS, None
    if not litert_installed():
        variants = [v for v in VARIANTS if v[0] != "litert"]
        skipped = f"LiteRT variants left out: the LiteRT libraries are not installed ({LITERT_EXTRA})"
    for fmt, precision, compress in variants:
        suffix = "" if (precision, compress) == ("fp32", "none") else f"-{precision}" + (
            f"-{compress}" if compress != "none" else "")
        path = export(trained, fmt, out_dir / f"{stem}{suffix}{FORMATS[fmt]}", precision, compress)
        report = verify(path, reference)
        rows.append({"format": fmt, "precision": precision, "compression": compress, "file": path.name,
                     "size_bytes": report["size_bytes"], "test_accuracy": report["test_accuracy"],
                     "agreement": report["agreement"], "max_abs_diff": report["max_abs_diff"]})
        if progress:
            progress(rows[-1])
    keras_acc = report["keras_test_accuracy"]
    table = {"run": trained.name, "keras_test_accuracy": keras_acc, "variants": rows, "skipped": skipped}
    lines = [f"# Export variants of {trained.name} (Keras test accuracy {keras_acc:.2%})", "",
             "| format | precision | compression | file | size | test accuracy | agreement | max abs Δp |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['precision']} | {r['compression']} | {r['file']} | "
                     f"{r['size_bytes'] / 1024:.1f} KiB | {r['test_accuracy']:.2%} | {r['agreement']:.2%} | "
                     f"{r['max_abs_diff']:.2e} |")
    if skipped:
        lines += ["", skipped]
    atomic_write_bytes(out_dir / "variants.md", ("\n".join(lines) + "\n").encode())
    atomic_write_json(out_dir / "variants.json", table)
    return table
