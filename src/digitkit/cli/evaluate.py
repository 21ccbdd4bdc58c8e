"""`digitkit evaluate`: a run's model on its test set."""

from __future__ import annotations

import json

from digitkit.cli.base import Command, command, escape


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

        from digitkit.evaluate import evaluate_run, report_files
        from digitkit.ui import console

        run, report = evaluate_run(args.run, args.data_dir, args.data)
        if args.json:
            print(json.dumps(report, indent=2))
            return 0
        on = f" on {report['dataset']}" if args.data else ""
        table = Table(title=escape(f"{run.name}{on}: accuracy {report['test_accuracy']:.2%}, "
                                    f"loss {report['test_loss']:.4f}"))
        for column in ("class", "precision", "recall", "F1", "support"):
            table.add_column(column, justify="right")
        for name, row in report["per_class"].items():
            table.add_row(escape(name), f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}",
                          str(row["support"]))
        console.print(table)
        written, matrix = report_files(run, args.data)
        console.print(f"Wrote {escape(written)} and {escape(matrix)}")
        return 0
