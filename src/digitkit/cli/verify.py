"""`digitkit verify`: an exported file against its Keras model."""

from __future__ import annotations

import json

from digitkit.cli.base import Command, command, escape


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
                f"{escape(report['model'])} vs {escape(report['against'])} on {report['images']:,} test images:\n"
                f"  top-1 agreement   {report['agreement']:.4%} ({report['disagreements']} differ)\n"
                f"  max |Δ prob|      {report['max_abs_diff']:.2e}\n"
                f"  test accuracy     {report['test_accuracy']:.2%} (Keras {report['keras_test_accuracy']:.2%})\n"
                f"  file size         {report['size_bytes'] / 1024:.1f} KiB\n"
                f"  {'[green]PASS' if report['passed'] else '[red]FAIL'}[/] "
                f"(agreement threshold {report['min_agreement']:.2%})"
            )
        return 0 if report["passed"] else 1
