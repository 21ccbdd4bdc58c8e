"""The ``digitkit`` command: a thin layer over the Python API (each command calls one function).

Each command is one class below: its help, its examples, its arguments and what it runs,
registered once. Only the command being run has its arguments built, so ``digitkit --version``
and ``digitkit --help`` do not import torch or Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
import time
from pathlib import Path

from digitkit import ConfigError, DigitkitError, __version__

STARTED = time.perf_counter()  # this module loads first: the command's clock (start-up included)

COMMANDS: dict[str, type[Command]] = {}


def command(cls):
    COMMANDS[cls.name] = cls
    return cls


class Command:
    name = ""
    help = ""
    examples = ""

    @staticmethod
    def arguments(parser: argparse.ArgumentParser) -> None:
        pass

    @staticmethod
    def run(args) -> int:
        raise NotImplementedError


def _escape(text) -> str:
    from rich.markup import escape

    return escape(str(text))


@command
class Train(Command):
    name = "train"
    help = "Train a model and write a run folder (runs/<name>/)."
    examples = """
        examples:
          digitkit train                                   # default preset: digitnet
          digitkit train --preset fast --name quick        # the quickest recipe
          digitkit train --model tutorial --epochs 10 --batch-size 200 --name tutorial
          digitkit train --dataset fashion-mnist --epochs 8 --name fashion
        """

    @staticmethod
    def arguments(parser):
        import dataclasses

        from digitkit.train import TrainConfig

        for field in dataclasses.fields(TrainConfig):
            meta, flag = field.metadata, "--" + field.name.replace("_", "-")
            cli = dict(meta["cli"])
            if field.type == "bool":  # --flag and --no-flag, since a preset may set either
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=meta["help"])
                continue
            kind = int if field.type.startswith("int") else float if field.type.startswith("float") else str
            default = "" if field.default in (None, dataclasses.MISSING) else f" (default {field.default})"
            parser.add_argument(flag, type=kind, help=meta["help"] + default, **cli)
        parser.add_argument("--nproc", type=int, metavar="N",
                            help="train data-parallel in N processes on this machine (torchrun; one per GPU)")

    @staticmethod
    def run(args) -> int:
        import dataclasses

        from digitkit.train import TrainConfig, train

        if args.nproc is not None:
            from digitkit.train.distributed import launch

            return launch(_without(args.argv, "--nproc"), args.nproc)
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
        run = train(TrainConfig.from_preset(given.pop("preset"), given.pop("model"), **given))
        if os.environ.get("RANK", "0") == "0":  # under torchrun, the main process alone
            _after_training(run)
        return 0


def _after_training(run) -> None:
    """Export the run's ONNX file, which `digitkit predict` and `serve` run (they start in about a
    second with it, without torch), and say where the command's time went."""
    from digitkit.export import export
    from digitkit.ui import console

    started = time.perf_counter()
    try:
        export(run.path, "onnx", run.export_path(".onnx"))
    except DigitkitError as err:  # the model is trained and saved: say so, and carry on
        console.print(f"[yellow]The run is complete, but its ONNX export failed ({_escape(str(err))}); predict "
                      "and serve will try again when first used.[/]")
        return
    steps = run.metrics.get("seconds", {})
    seconds = {"start-up": started - STARTED - sum(steps.values())} | steps | {"ONNX": time.perf_counter() - started}
    shown = ", ".join(f"{step} {value:.1f} s" for step, value in seconds.items())
    console.print(f"Ready for predict and serve: {_escape(str(run.export_path('.onnx')))}")
    console.print(f"[dim]{time.perf_counter() - STARTED:.1f} s in all: {_escape(shown)}[/]")


@command
class Evaluate(Command):
    name = "evaluate"
    help = "Evaluate a run's model on the test set: accuracy, per-class scores, confusion matrix."
    examples = """
        examples:
          digitkit evaluate runs/quick
          digitkit evaluate runs/quick --json
          digitkit evaluate runs/quick --data my-digits/        # my-digits/0/*.png … my-digits/9/*.png
        """

    @staticmethod
    def arguments(parser):
        parser.add_argument("run", help="run folder (runs/<name>)")
        parser.add_argument("--data", help="score on this folder of class subfolders (all of its images) "
                                           "instead of the run's test split")
        parser.add_argument("--data-dir", help="folder with the dataset's IDX files")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    @staticmethod
    def run(args) -> int:
        from rich.table import Table

        from digitkit.evaluate import evaluate_run
        from digitkit.ui import console

        run, report = evaluate_run(args.run, args.data_dir, args.data)
        if args.json:
            print(json.dumps(report, indent=2))
            return 0
        on = f" on {report['dataset']}" if args.data else ""
        table = Table(title=_escape(f"{run.name}{on}: accuracy {report['test_accuracy']:.2%}, "
                                    f"loss {report['test_loss']:.4f}"))
        for column in ("class", "precision", "recall", "F1", "support"):
            table.add_column(column, justify="right")
        for name, row in report["per_class"].items():
            table.add_row(_escape(name), f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}",
                          str(row["support"]))
        console.print(table)
        suffix = "-" + Path(args.data).resolve().name if args.data else ""
        console.print(f"Wrote {_escape(run.path / f'evaluation{suffix}.json')} and "
                      f"{_escape(run.path / f'confusion_matrix{suffix}.png')}")
        return 0


@command
class Export(Command):
    name = "export"
    help = "Export a run's model to Core ML (.mlpackage / .mlmodel), ONNX or LiteRT (.tflite, Android)."
    examples = """
        examples:
          digitkit export runs/first                              # runs/first/MNISTClassifier.mlpackage
          digitkit export runs/first --format coreml --precision fp16 -o MNISTClassifier.mlpackage
          digitkit export runs/first --format coreml --compress int8 -o small.mlpackage
          digitkit export runs/first --format coreml-nn           # .mlmodel for iOS 11-14
          digitkit export runs/first --format onnx                # runs/first/MNISTClassifier.onnx
          digitkit export runs/first --format litert              # runs/first/MNISTClassifier.tflite
          digitkit export runs/first --format litert --precision int8 -o MNISTClassifier-int8.tflite
          digitkit export runs/first --all                        # every variant + table in runs/first/exports/
        """

    @staticmethod
    def arguments(parser):
        from digitkit.export import COMPRESSIONS, FORMATS, PRECISIONS

        parser.add_argument("run", help="run folder (runs/<name>) or a .keras file")
        parser.add_argument("--format", default="coreml", choices=list(FORMATS),
                            help="coreml: ML Program .mlpackage (iOS 16+, default); coreml-nn: NeuralNetwork "
                                 ".mlmodel (older iOS); onnx; litert: .tflite for Android (needs the extra: "
                                 'pip install "digitkit[litert]")')
        parser.add_argument("-o", "--output", help="output file or folder (default: inside the run folder)")
        parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                            help="fp32 or fp16 (Core ML, LiteRT); int8 (LiteRT: dynamic-range int8 weights)")
        parser.add_argument("--compress", default="none", choices=COMPRESSIONS, help="weight compression (ML Program only)")
        parser.add_argument("--all", action="store_true",
                            help="write every variant, verify each, and write a size/accuracy table")

    @staticmethod
    def run(args) -> int:
        from digitkit.export import export
        from digitkit.ui import console

        if args.all:
            from digitkit.verify.variants import export_variants

            if args.output and Path(args.output).suffix:
                raise DigitkitError("with --all, -o/--output is a folder")
            table = export_variants(args.run, args.output, progress=lambda row: console.print(
                f"{_escape(row['file']):<42} {row['size_bytes'] / 1024:8.1f} KiB  accuracy {row['test_accuracy']:.2%}  "
                f"agreement {row['agreement']:.2%}"))
            console.print(f"Keras test accuracy {table['keras_test_accuracy']:.2%}; wrote variants.md and variants.json")
            if table["skipped"]:
                console.print(f"[yellow]{_escape(table['skipped'])}[/]")
            return 0
        path = export(args.run, args.format, args.output, args.precision, args.compress)
        console.print(f"Wrote {_escape(path)}")
        console.print(f"Check it: digitkit verify {_escape(path)}")
        return 0


@command
class Verify(Command):
    name = "verify"
    help = "Run an exported model on Linux and compare it with the Keras model on the test set."
    examples = """
        examples:
          digitkit verify runs/first/MNISTClassifier.mlpackage
          digitkit verify small.mlpackage --against runs/first --json
          digitkit verify runs/first/MNISTClassifier.onnx --min-agreement 0.999
          digitkit verify runs/first/MNISTClassifier.tflite
        """

    @staticmethod
    def arguments(parser):
        from digitkit.verify import MIN_AGREEMENT

        parser.add_argument("model", help="a .mlpackage, .mlmodel, .onnx or .tflite file")
        parser.add_argument("--against", help="run folder or .keras file to compare with "
                                              "(default: the run folder the file is in)")
        parser.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT,
                            help=f"exit with status 1 below this top-1 agreement (default {MIN_AGREEMENT})")
        parser.add_argument("--limit", type=int, help="use only the first N test images")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    @staticmethod
    def run(args) -> int:
        from digitkit.ui import console
        from digitkit.verify import verify

        report = verify(args.model, args.against, args.limit, args.min_agreement)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            console.print(
                f"{_escape(report['model'])} vs {_escape(report['against'])} on {report['images']:,} test images:\n"
                f"  top-1 agreement   {report['agreement']:.4%} ({report['disagreements']} differ)\n"
                f"  max |Δ prob|      {report['max_abs_diff']:.2e}\n"
                f"  test accuracy     {report['test_accuracy']:.2%} (Keras {report['keras_test_accuracy']:.2%})\n"
                f"  file size         {report['size_bytes'] / 1024:.1f} KiB\n"
                f"  {'[green]PASS' if report['passed'] else '[red]FAIL'}[/] "
                f"(agreement threshold {report['min_agreement']:.2%})"
            )
        return 0 if report["passed"] else 1


@command
class Predict(Command):
    name = "predict"
    help = "Read handwritten digits in image files (any size, colour, polarity)."
    examples = """
        examples:
          digitkit predict runs/first scans/seven.png
          digitkit predict runs/first/MNISTClassifier.mlpackage scans/ --top 3
          digitkit predict runs/first/MNISTClassifier.onnx 'scans/*.jpg' --json
          digitkit predict runs/first photo.jpg --save-input seen/    # see what the model saw
          digitkit predict runs/first my-digits/      # my-digits/0/*.png …: right answers per class
        """

    @staticmethod
    def arguments(parser):
        parser.add_argument("model", help="run folder, .keras, .onnx, .tflite, .mlpackage or .mlmodel")
        parser.add_argument("images", nargs="+", help="image files, folders or glob patterns")
        parser.add_argument("--json", action="store_true", help="print one JSON object per image")
        parser.add_argument("--top", type=int, default=2, help="how many best classes to show (default 2)")
        parser.add_argument("--save-input", metavar="DIR", help="write the normalised 28x28 image each file became")

    @staticmethod
    def run(args) -> int:
        from rich.table import Table

        from digitkit.classifier import not_a_class_message
        from digitkit.predict import labelled_inputs, load_model, predict_files
        from digitkit.ui import console

        if args.top < 1:
            raise DigitkitError("--top must be at least 1")
        inputs = labelled_inputs(args.images)
        if not inputs:
            raise DigitkitError(f"no image files in {', '.join(args.images)} (nor in class subfolders)")
        classifier = load_model(args.model)
        rows = predict_files(classifier, [path for path, _ in inputs], top=min(args.top, len(classifier.labels)),
                             save_input=args.save_input)
        for row, (_, expected) in zip(rows, inputs):
            if expected is not None:
                row["expected"] = expected
                if "label" in row:
                    row["correct"] = row["label"] == expected
        if args.json:
            for row in rows:
                print(json.dumps(row))
        else:
            table = Table(title=_escape(f"{classifier.name}: {len(rows)} image(s)"))
            for column in ("file", "class", "confidence", "runner-up" if args.top == 2 else "next best"):
                table.add_column(column)
            for row in rows:
                if "error" in row:
                    table.add_row(_escape(row["file"]), "[red]error", "", _escape(row["error"]))
                elif row["verdict"] == "not a class":
                    table.add_row(_escape(row["file"]), "[yellow]none", f"{row['confidence']:.1%}",
                                  not_a_class_message(classifier.labels))
                else:
                    rest = ", ".join(f"{_escape(label)} {p:.1%}" for label, p in row["top"][1:])
                    unsure = " [yellow](not sure)[/]" if row["verdict"] == "not sure" else ""
                    label = _escape(row["label"]) if row.get("correct", True) else f"[red]{_escape(row['label'])}[/]"
                    table.add_row(_escape(row["file"]), label, f"{row['confidence']:.1%}{unsure}", rest)
            console.print(table)
            _print_per_class(rows, console)
        return 1 if any("error" in row for row in rows) else 0


def _print_per_class(rows: list[dict], console) -> None:
    """For images labelled by their class folder: how many each class got right."""
    from collections import defaultdict

    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if "expected" in row:
            tally[row["expected"]][1] += 1
            tally[row["expected"]][0] += bool(row.get("correct"))
    if not tally:
        return
    right, total = sum(r for r, _ in tally.values()), sum(n for _, n in tally.values())
    console.print(f"Right: {right}/{total} ({right / total:.1%}); per class: "
                  + ", ".join(f"{_escape(name)} {r}/{n}" for name, (r, n) in sorted(tally.items())))


def server_arguments(parser) -> None:
    """The flags `serve` and `teach` share: where to listen and who may use the server."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0: your network, "
                             "with a token)")
    parser.add_argument("--port", type=int, default=8000, help="port, 1-65535 (default 8000)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name clients may use besides IP addresses and localhost (repeatable)")
    parser.add_argument("--token", help="the token clients must present (default: a random one whenever --host is "
                                        "not loopback; also read from $DIGITKIT_TOKEN); on loopback, none unless given")
    parser.add_argument("--no-token", action="store_true",
                        help="no token on a network address: anyone who can reach the port may use the server")


def server_token(args, what_anyone_can_do: str) -> str | None:
    """The token the server will require (None: none), with a warning when the network gets in without."""
    from digitkit.serve.access import choose_token, is_loopback
    from digitkit.ui import err_console

    token = choose_token(args.host, args.token, args.no_token)
    if token is None and not is_loopback(args.host):
        err_console.print(f"[bold yellow]warning:[/] --no-token on {_escape(args.host)}: anyone who can reach port "
                          f"{args.port} on your network can {what_anyone_can_do}.", soft_wrap=True)
    return token


def announce(args, token: str | None) -> None:
    """The URLs to open (each address the server can be reached at, with its token), and a QR code
    of the first for a phone's camera when the server is open to the network."""
    from digitkit.serve.access import is_loopback, qr_code, urls
    from digitkit.ui import console

    links = urls(args.host, args.port, token)
    if is_loopback(args.host):
        console.print(f"Open [bold]{_escape(links[0])}[/] (API docs: {_escape(links[0].split('?')[0])}docs)",
                      soft_wrap=True)
        return
    console.print("Open from your phone or another computer on this network (scan the code with the camera):",
                  soft_wrap=True)
    for link in links[:-1]:
        console.print(f"  [bold]{_escape(link)}[/]", soft_wrap=True)
    console.print(f"On this machine: {_escape(links[-1])}", soft_wrap=True)
    if len(links) > 1:
        console.out(qr_code(links[0]), highlight=False)
    if token:
        console.print("Scripts send the header [bold]Authorization: Bearer TOKEN[/] with the token from the URL.",
                      soft_wrap=True)


@command
class Serve(Command):
    name = "serve"
    help = "Serve the drawing web app and the HTTP API (predictions with onnxruntime, or LiteRT for a .tflite)."
    examples = """
        examples:
          digitkit serve                                  # newest run in ./runs, http://127.0.0.1:8000
          digitkit serve runs/first --port 8080
          digitkit serve runs/first/MNISTClassifier.onnx --host 0.0.0.0   # your phone: a URL with a token, a QR code
          digitkit serve runs/first/MNISTClassifier-int8.tflite           # what an Android app would run
        """

    @staticmethod
    def arguments(parser):
        parser.add_argument("model", nargs="?", help="run folder, .keras, .onnx or .tflite (default: the newest run in ./runs)")
        parser.add_argument("--workers", type=int, default=1,
                            help="server processes (default 1; one per core for load; Linux only)")
        server_arguments(parser)

    @staticmethod
    def run(args) -> int:
        from digitkit.runs import Run
        from digitkit.predict import resolve_onnx
        from digitkit.serve.server import check_port, load_onnx, run_server
        from digitkit.ui import console

        check_port(args.port)
        if args.workers < 1:
            raise DigitkitError("--workers must be at least 1")
        onnx_path = resolve_onnx(args.model if args.model is not None else Run.newest().path)
        classifier = load_onnx(onnx_path)  # loaded here too, so a bad model fails before binding
        token = server_token(args, "use the model and read what it answers")

        def ready():
            console.print(f"Serving {_escape(classifier.name)} ({_escape(onnx_path)}). Ctrl-C stops.")
            announce(args, token)

        run_server(onnx_path, args.host, args.port, args.workers, set(args.allow_host), on_ready=ready, token=token)
        return 0


@command
class Teach(Command):
    name = "teach"
    help = "Teach a model your own drawings in the browser: name classes, draw examples, train, try, download."
    examples = """
        examples:
          digitkit teach                                    # ./teach/, starting from the newest run in ./runs
          digitkit teach --workspace shapes --init runs/first --port 8080   # ShapesClassifier.mlpackage
          digitkit teach --name Emoji                       # EmojiClassifier.mlpackage
          digitkit teach --host 0.0.0.0                     # draw on your phone: a URL with a token, a QR code
          digitkit train --data teach/data --name mine      # later: the same drawings from the command line
        """

    @staticmethod
    def arguments(parser):
        parser.add_argument("--workspace", default="teach", help="folder for the drawings and the runs (default: teach)")
        parser.add_argument("--init", help="run to start from (default: the newest run in ./runs, if any)")
        parser.add_argument("--name", help="the model's name: NAME → NAMEClassifier.mlpackage (default: the workspace's "
                                           "folder name)")
        server_arguments(parser)

    @staticmethod
    def run(args) -> int:
        from digitkit.runs import Run
        from digitkit.serve.server import check_port, run_teach
        from digitkit.ui import console

        check_port(args.port)
        init = args.init
        if init is None:
            try:
                init = str(Run.newest().path)
            except DigitkitError:
                console.print("No run in ./runs to start from: models will be trained from scratch "
                              "(give --init RUN to start from a digit model; it needs fewer drawings).")
        else:
            Run.open(init)
        token = server_token(args, "add and delete classes and drawings, train, and download the models and drawings")

        def ready():
            start = f", starting from {_escape(init)}" if init else ""
            console.print(f"Teach page for the workspace {_escape(args.workspace)}{start}. Ctrl-C stops.")
            announce(args, token)

        if args.name is not None and not re.search(r"[A-Za-z0-9]", args.name):
            raise DigitkitError(f"--name {args.name!r} has no letter or digit to name a model with")
        run_teach(args.workspace, init, args.host, args.port, set(args.allow_host), on_ready=ready, model_name=args.name,
                  token=token)
        return 0


@command
class Info(Command):
    name = "info"
    help = "Show versions, backend, device and where the data comes from."
    examples = """
        example:
          digitkit info
        """

    @staticmethod
    def run(args) -> int:
        import platform

        import keras
        import numpy
        import torch

        from digitkit.data import SPECS, locate
        from digitkit.inference import device
        from digitkit.ui import console

        dev = device()
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "CPU"
        console.print(f"digitkit {__version__}  python {platform.python_version()}  keras {keras.__version__} "
                      f"(backend {keras.backend.backend()})  torch {torch.__version__}  numpy {numpy.__version__}")
        from importlib.metadata import PackageNotFoundError, version

        for optional in ("coremltools", "onnxruntime", "fastapi", "litert-torch", "ai-edge-litert"):
            try:
                console.print(f"{optional} {version(optional)}")
            except PackageNotFoundError:
                console.print(f"{optional}: not installed")
        console.print(f"device: {dev.type} ({name}), {torch.get_num_threads()} CPU threads")
        for dataset in SPECS:
            try:
                where = locate(dataset, download=False)["train_images"].parent
            except DigitkitError:
                where = "not found locally (downloaded on first use)"
            console.print(f"data {dataset}: {_escape(where)}")
        return 0


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of the ``chosen`` command only (the others' stay unbuilt)."""
    parser = argparse.ArgumentParser(
        prog="digitkit",
        description="Train a handwritten-digit classifier, export it to Core ML / ONNX, verify it, try it.",
        epilog="Start with:  digitkit train   then   digitkit evaluate runs/<name>",
    )
    parser.add_argument("--version", action="version", version=f"digitkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cls in COMMANDS.items():
        sub = commands.add_parser(name, help=cls.help, description=cls.help, epilog=textwrap.dedent(cls.examples),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(func=cls.run)
        if name == chosen:
            cls.arguments(sub)
    return parser


def _without(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value (``--flag N`` or ``--flag=N``)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == flag:
            skip = True
        elif not item.startswith(flag + "="):
            out.append(item)
    return out


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    from digitkit.deps import keras_extras_skipped

    with keras_extras_skipped():
        return _main(sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    # coremltools draws a tqdm bar for each of its internal conversion passes; digitkit shows its own
    # progress. tqdm reads this when first imported, and a user's own setting wins.
    os.environ.setdefault("TQDM_DISABLE", "1")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = build_parser(chosen).parse_args(argv)
    except DigitkitError as err:  # building a command's flags can need its data (e.g. the choices)
        return _fail(err)
    if args.command is None:
        build_parser().print_help()
        return 2
    args.argv = argv
    try:
        return args.func(args)
    except DigitkitError as err:
        return _fail(err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _fail(err: DigitkitError) -> int:
    from digitkit.ui import err_console

    message = f"{_flag(err.setting)} {err.message}" if isinstance(err, ConfigError) else str(err)
    err_console.print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
