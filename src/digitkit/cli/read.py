"""`digitkit read`: the whole number in each image (a drawing, a scan, a photo of paper)."""

from __future__ import annotations

import json

from digitkit import DigitkitError
from digitkit.cli.base import Command, command, escape, image_arguments


@command
class Read(Command):
    name = "read"
    help = "Read a whole number (several digits on one line) in image files: drawings, scans, photos of paper."
    examples = """
        examples:
          digitkit read number.png                        # with the newest run in ./runs
          digitkit read runs/first photo.jpg --json
          digitkit read runs/first meters/                # with meters/numbers.csv (file,number): accuracy
        """

    @staticmethod
    def arguments(parser):
        image_arguments(parser)

    @staticmethod
    def run(args) -> int:
        from digitkit.predict import labelled_inputs, load_model, model_and_images
        from digitkit.predict.number_files import expected_numbers, read_number_files
        from digitkit.ui import console

        model, images = model_and_images(args.inputs)
        paths = [path for path, _ in labelled_inputs(images)]
        if not paths:
            raise DigitkitError(f"no image files in {', '.join(images)}")
        classifier = load_model(model)
        answers = read_number_files(classifier, paths)
        expected = expected_numbers(paths)
        rows = [_row(path, answer, expected.get(path.resolve())) for path, answer in zip(paths, answers)]
        if args.json:
            for row in rows:
                print(json.dumps(row))
        else:
            console.print(_table(classifier.name, rows))
            scored = [row for row in rows if "expected" in row]
            if scored:
                whole = sum(row.get("correct", False) for row in scored)
                digits = sum(_digits_right(row) for row in scored)
                total = sum(len(row["expected"]) for row in scored)
                console.print(f"Whole numbers right: {whole}/{len(scored)} ({whole / len(scored):.1%}); "
                              f"digits right: {digits}/{total} ({digits / max(total, 1):.1%})")
        return 1 if any("error" in row for row in rows) else 0


def _row(path, answer, expected: str | None) -> dict:
    if isinstance(answer, str):
        row = {"file": str(path), "error": answer}
    else:
        row = {"file": str(path), "number": answer.number, "verdict": answer.verdict, "message": answer.message,
               "digits": [{"label": d.label, "confidence": round(d.confidence, 4), "verdict": d.verdict,
                           "box": list(d.box)} for d in answer.digits]}
    if expected is not None:
        row["expected"] = expected
        row["correct"] = row.get("number") == expected
    return row


def _digits_right(row: dict) -> int:
    """Digits in their right place (a number of the wrong length counts those that still line up)."""
    return sum(a == b for a, b in zip(row.get("number", ""), row["expected"]))


def _table(name: str, rows: list[dict]):
    from rich.table import Table

    table = Table(title=escape(f"{name}: {len(rows)} image(s)"))
    for column in ("file", "number", "verdict", "digits (confidence)"):
        table.add_column(column)
    for row in rows:
        if "error" in row:
            table.add_row(escape(row["file"]), "[red]error", "", escape(row["error"]))
            continue
        number = escape(row["number"] or "–")
        if row.get("correct") is False:
            number = f"[red]{number}[/] (expected {escape(row['expected'])})"
        verdict = row["verdict"] if row["verdict"] == "sure" else f"[yellow]{escape(row['message'] or row['verdict'])}[/]"
        digits = " ".join(f"{escape(d['label'])} {d['confidence']:.0%}" if d["verdict"] != "point" else "."
                          for d in row["digits"])
        table.add_row(escape(row["file"]), number, verdict, digits)
    return table
