"""`digitkit export`: a run's model to Core ML, ONNX or LiteRT."""

from __future__ import annotations

from pathlib import Path

from digitkit import DigitkitError
from digitkit.cli.base import Command, command, escape


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
                f"{escape(row['file']):<42} {row['size_bytes'] / 1024:8.1f} KiB  accuracy {row['test_accuracy']:.2%}  "
                f"agreement {row['agreement']:.2%}"))
            console.print(f"Keras test accuracy {table['keras_test_accuracy']:.2%}; wrote variants.md and variants.json")
            if table["skipped"]:
                console.print(f"[yellow]{escape(table['skipped'])}[/]")
            return 0
        path = export(args.run, args.format, args.output, args.precision, args.compress)
        console.print(f"Wrote {escape(path)}")
        console.print(f"Check it: digitkit verify {escape(path)}")
        return 0
