"""The ``digitkit`` command: a thin layer over the Python API (each command calls one function)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from digitkit import DigitkitError, __version__

EXAMPLES = {
    "train": """
        examples:
          digitkit train                                   # default preset: digitnet, ~99.6%
          digitkit train --preset fast --name quick        # >=99.0% in about 40 s on 2 CPU cores
          digitkit train --model tutorial --epochs 10 --batch-size 200 --name tutorial
          digitkit train --dataset fashion-mnist --epochs 8 --name fashion
        """,
    "evaluate": """
        example:
          digitkit evaluate runs/quick
          digitkit evaluate runs/quick --json
        """,
    "export": """
        examples:
          digitkit export runs/first                              # runs/first/MNISTClassifier.mlpackage
          digitkit export runs/first --format coreml --precision fp16 -o MNISTClassifier.mlpackage
          digitkit export runs/first --format coreml --compress int8 -o small.mlpackage
          digitkit export runs/first --format coreml-nn           # .mlmodel for iOS 11-14
          digitkit export runs/first --format onnx                # runs/first/MNISTClassifier.onnx
          digitkit export runs/first --all                        # every variant + table in runs/first/exports/
        """,
    "verify": """
        examples:
          digitkit verify runs/first/MNISTClassifier.mlpackage
          digitkit verify small.mlpackage --against runs/first --json
          digitkit verify runs/first/MNISTClassifier.onnx --min-agreement 0.999
        """,
    "predict": """
        examples:
          digitkit predict runs/first scans/seven.png
          digitkit predict runs/first/MNISTClassifier.mlpackage scans/ --top 3
          digitkit predict runs/first/MNISTClassifier.onnx 'scans/*.jpg' --json
          digitkit predict runs/first photo.jpg --save-input seen/    # see what the model saw
        """,
    "serve": """
        examples:
          digitkit serve                                  # newest run in ./runs, http://127.0.0.1:8000
          digitkit serve runs/first --port 8080
          digitkit serve runs/first/MNISTClassifier.onnx --host 0.0.0.0   # reachable from your phone
        """,
    "info": """
        example:
          digitkit info
        """,
}


def _parser() -> argparse.ArgumentParser:
    from digitkit.data import SPECS
    from digitkit.export.core import FORMATS
    from digitkit.models import MODELS
    from digitkit.train import PRESETS

    parser = argparse.ArgumentParser(
        prog="digitkit",
        description="Train a handwritten-digit classifier, export it to Core ML / ONNX, verify it, try it.",
        epilog="Start with:  digitkit train   then   digitkit evaluate runs/<name>",
    )
    parser.add_argument("--version", action="version", version=f"digitkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help, description=help, epilog=textwrap.dedent(EXAMPLES[name]),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    train = command("train", "Train a model and write a run folder (runs/<name>/).")
    train.add_argument("--preset", choices=[p for p in PRESETS if p != "tutorial"] + ["tutorial"],
                       help="training recipe (default: the model's own; 'default' for digitnet)")
    train.add_argument("--model", choices=list(MODELS), help="architecture (default: the preset's, digitnet)")
    train.add_argument("--epochs", type=int, help="number of epochs")
    train.add_argument("--batch-size", type=int, help="examples per step")
    train.add_argument("--lr", type=float, help="(peak) learning rate")
    train.add_argument("--no-augment", dest="augment", action="store_const", const=False,
                       help="train without augmentation")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same result on CPU")
    train.add_argument("--name", help="run folder name (default: <model>-<date>-<time>)")
    train.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder of that name")
    train.add_argument("--dataset", choices=list(SPECS), default="mnist", help="dataset (default: mnist)")
    train.add_argument("--data-dir", help="folder with the dataset's IDX files (or set DIGITKIT_DATA_DIR)")
    train.add_argument("--limit", type=int, help="train on only the first N training images (quick checks)")
    train.add_argument("--val-size", type=int, help="validation images carved from the training set (default 5000)")
    train.add_argument("--patience", type=int, help="early-stopping patience in epochs (default 4)")

    evaluate = command("evaluate", "Evaluate a run's model on the test set: accuracy, per-class scores, confusion matrix.")
    evaluate.add_argument("run", help="run folder (runs/<name>)")
    evaluate.add_argument("--data-dir", help="folder with the dataset's IDX files")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")

    export = command("export", "Export a run's model to Core ML (.mlpackage / .mlmodel) or ONNX.")
    export.add_argument("run", help="run folder (runs/<name>) or a .keras file")
    export.add_argument("--format", default="coreml", choices=list(FORMATS),
                        help="coreml: ML Program .mlpackage (iOS 16+, default); coreml-nn: NeuralNetwork "
                             ".mlmodel (older iOS); onnx")
    export.add_argument("-o", "--output", help="output file or folder (default: inside the run folder)")
    export.add_argument("--precision", default="fp32", choices=["fp32", "fp16"], help="compute precision (Core ML)")
    export.add_argument("--compress", default="none", choices=["none", "int8", "palettize4"],
                        help="weight compression (ML Program only)")
    export.add_argument("--all", action="store_true",
                        help="write every variant, verify each, and write a size/accuracy table")

    verify = command("verify", "Run an exported model on Linux and compare it with the Keras model on the test set.")
    verify.add_argument("model", help="a .mlpackage, .mlmodel or .onnx file")
    verify.add_argument("--against", help="run folder or .keras file to compare with (default: the run folder the file is in)")
    verify.add_argument("--min-agreement", type=float, default=0.99,
                        help="exit with status 1 below this top-1 agreement (default 0.99)")
    verify.add_argument("--limit", type=int, help="use only the first N test images")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")

    predict = command("predict", "Read handwritten digits in image files (any size, colour, polarity).")
    predict.add_argument("model", help="run folder, .keras, .onnx, .mlpackage or .mlmodel")
    predict.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    predict.add_argument("--json", action="store_true", help="print one JSON object per image")
    predict.add_argument("--top", type=int, default=2, help="how many best classes to show (default 2)")
    predict.add_argument("--save-input", metavar="DIR", help="write the normalised 28x28 image each file became")

    serve = command("serve", "Serve the drawing web app and the HTTP API (predictions with onnxruntime).")
    serve.add_argument("model", nargs="?", help="run folder, .keras or .onnx (default: the newest run in ./runs)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default 1; one per core for load)")

    command("info", "Show versions, backend, device and where the data comes from.")
    return parser


def cmd_train(args) -> int:
    from digitkit.train import TrainConfig, train

    config = TrainConfig.from_preset(
        args.preset, args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        augment=args.augment, seed=args.seed, name=args.name, runs_dir=args.runs_dir,
        overwrite=args.overwrite, dataset=args.dataset, data_dir=args.data_dir, limit=args.limit,
        patience=args.patience, val_size=args.val_size,
    )
    train(config)
    return 0


def cmd_evaluate(args) -> int:
    from rich.table import Table

    from digitkit.evaluate import evaluate_run
    from digitkit.ui import console

    run, report = evaluate_run(args.run, args.data_dir)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    table = Table(title=f"{run.name}: test accuracy {report['test_accuracy']:.2%}, loss {report['test_loss']:.4f}")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for name, row in report["per_class"].items():
        table.add_row(name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(row["support"]))
    console.print(table)
    console.print(f"Wrote {run.path / 'evaluation.json'} and {run.path / 'confusion_matrix.png'}")
    return 0


def cmd_export(args) -> int:
    from digitkit.export import export, export_all
    from digitkit.ui import console

    if args.all:
        if args.output and Path(args.output).suffix:
            raise DigitkitError("with --all, -o/--output is a folder")
        table = export_all(args.run, args.output, progress=lambda row: console.print(
            f"{row['file']:<42} {row['size_bytes'] / 1024:8.1f} KiB  accuracy {row['test_accuracy']:.2%}  "
            f"agreement {row['agreement']:.2%}"))
        console.print(f"Keras test accuracy {table['keras_test_accuracy']:.2%}; wrote variants.md and variants.json")
        return 0
    path = export(args.run, args.format, args.output, args.precision, args.compress)
    console.print(f"Wrote {path}")
    console.print(f"Check it: digitkit verify {path}")
    return 0


def cmd_verify(args) -> int:
    from digitkit.ui import console
    from digitkit.verify import verify

    report = verify(args.model, args.against, args.limit)
    passed = report["agreement"] >= args.min_agreement
    report["min_agreement"] = args.min_agreement
    report["passed"] = passed
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        console.print(
            f"{report['model']} vs {report['against']} on {report['images']:,} test images:\n"
            f"  top-1 agreement   {report['agreement']:.4%} ({report['disagreements']} differ)\n"
            f"  max |Δ prob|      {report['max_abs_diff']:.2e}\n"
            f"  test accuracy     {report['test_accuracy']:.2%} (Keras {report['keras_test_accuracy']:.2%})\n"
            f"  file size         {report['size_bytes'] / 1024:.1f} KiB\n"
            f"  {'[green]PASS' if passed else '[red]FAIL'}[/] (agreement threshold {args.min_agreement:.2%})"
        )
    return 0 if passed else 1


def cmd_predict(args) -> int:
    from rich.table import Table

    from digitkit.predict import expand_inputs, load_classifier, predict_files
    from digitkit.ui import console

    if args.top < 1:
        raise DigitkitError("--top must be at least 1")
    paths = expand_inputs(args.images)
    classifier = load_classifier(args.model)
    rows = predict_files(classifier, paths, top=min(args.top, len(classifier.class_names)),
                         save_input=args.save_input)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        table = Table(title=f"{classifier.name}: {len(rows)} image(s)")
        for column in ("file", "digit", "confidence", "runner-up" if args.top == 2 else "next best"):
            table.add_column(column)
        for row in rows:
            if "error" in row:
                table.add_row(row["file"], "[red]error", "", row["error"])
            else:
                rest = ", ".join(f"{label} {p:.1%}" for label, p in row["top"][1:])
                table.add_row(row["file"], row["label"], f"{row['confidence']:.1%}", rest)
        console.print(table)
    return 1 if any("error" in row for row in rows) else 0


def cmd_serve(args) -> int:
    from digitkit.runs import MODEL_FILE
    from digitkit.serve.app import load_onnx, resolve_onnx, run_server
    from digitkit.ui import console

    model = args.model
    if model is None:
        runs = sorted(Path("runs").glob(f"*/{MODEL_FILE}"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise DigitkitError("no model given and no trained run in ./runs; train one first: digitkit train")
        model = runs[-1].parent
    if args.workers < 1:
        raise DigitkitError("--workers must be at least 1")
    onnx_path = resolve_onnx(model)
    classifier = load_onnx(onnx_path)  # loaded here too, so a bad model fails before binding
    console.print(f"Serving {classifier.name} ({onnx_path}). Open [bold]http://{args.host}:{args.port}/[/] "
                  f"(API docs: http://{args.host}:{args.port}/docs). Ctrl-C stops.")
    run_server(onnx_path, args.host, args.port, args.workers)
    return 0


def cmd_info(args) -> int:
    import platform

    import keras
    import numpy
    import torch

    from digitkit.data import SPECS, locate
    from digitkit.train import device
    from digitkit.ui import console

    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "CPU"
    console.print(f"digitkit {__version__}  python {platform.python_version()}  keras {keras.__version__} "
                  f"(backend {keras.backend.backend()})  torch {torch.__version__}  numpy {numpy.__version__}")
    for optional in ("coremltools", "onnxruntime", "fastapi"):
        try:
            module = __import__(optional)
            console.print(f"{optional} {module.__version__}")
        except ImportError:
            console.print(f"{optional}: not installed")
    console.print(f"device: {dev.type} ({name}), {torch.get_num_threads()} CPU threads")
    for dataset in SPECS:
        try:
            where = locate(dataset, download=False)["train_images"].parent
        except DigitkitError:
            where = "not found locally (downloaded on first use)"
        console.print(f"data {dataset}: {where}")
    return 0


HANDLERS = {"train": cmd_train, "evaluate": cmd_evaluate, "export": cmd_export, "verify": cmd_verify,
            "predict": cmd_predict, "serve": cmd_serve, "info": cmd_info}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return HANDLERS[args.command](args)
    except DigitkitError as err:
        from digitkit.ui import err_console

        err_console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
