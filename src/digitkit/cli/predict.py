"""`digitkit predict`: read the digit in each image file."""

from __future__ import annotations

import json

from digitkit import DigitkitError
from digitkit.cli.base import Command, command, escape, image_arguments


@command
class Predict(Command):
    name = "predict"
    help = "Read handwritten digits in image files (any size, colour, polarity)."
    examples = """
        examples:
          digitkit predict scans/seven.png                # with the newest run in ./runs
          digitkit predict runs/first scans/seven.png
          digitkit predict runs/first/MNISTClassifier.mlpackage scans/ --top 3
          digitkit predict runs/first/MNISTClassifier.onnx 'scans/*.jpg' --json
          digitkit predict runs/first photo.jpg --save-input seen/    # see what the model saw
          digitkit predict runs/first my-digits/      # my-digits/0/*.png …: right answers per class
        """

    @staticmethod
    def arguments(parser):
        image_arguments(parser)
        parser.add_argument("--top", type=int, default=2, help="how many best classes to show (default 2)")
        parser.add_argument("--save-input", metavar="DIR", help="write the normalised 28x28 image each file became")

    @staticmethod
    def run(args) -> int:
        from digitkit.predict import class_tally, labelled_inputs, load_model, model_and_images, read_files, save_inputs
        from digitkit.ui import console

        if args.top < 1:
            raise DigitkitError("--top must be at least 1")
        model, images = model_and_images(args.inputs)
        inputs = labelled_inputs(images)
        if not inputs:
            raise DigitkitError(f"no image files in {', '.join(images)} (nor in class subfolders)")
        paths = [path for path, _ in inputs]
        classifier = load_model(model)
        answers = read_files(classifier, paths, top=min(args.top, len(classifier.labels)))
        saved = save_inputs(paths, answers, args.save_input) if args.save_input else [None] * len(paths)
        if args.json:
            for (path, expected), answer, written in zip(inputs, answers, saved):
                print(json.dumps(_predict_row(path, answer, expected, written)))
        else:
            console.print(_predict_table(classifier.name, inputs, answers, args.top))
            tally = class_tally(list(zip(answers, (expected for _, expected in inputs))))
            if tally:
                right, total = sum(r for r, _ in tally.values()), sum(n for _, n in tally.values())
                console.print(f"Right: {right}/{total} ({right / total:.1%}); per class: "
                              + ", ".join(f"{escape(name)} {r}/{n}" for name, (r, n) in tally.items()))
        return 1 if any(isinstance(answer, str) for answer in answers) else 0


def _predict_row(path, answer, expected: str | None, written) -> dict:
    row = {"file": str(path), "error": answer} if isinstance(answer, str) else {"file": str(path), **answer.summary()}
    if written is not None:
        row["input_saved"] = str(written)
    if expected is not None:
        row["expected"] = expected
        if not isinstance(answer, str):
            row["correct"] = answer.label == expected
    return row


def _predict_table(name: str, inputs, answers, top: int):
    from rich.table import Table

    table = Table(title=escape(f"{name}: {len(answers)} image(s)"))
    for column in ("file", "class", "confidence", "runner-up" if top == 2 else "next best"):
        table.add_column(column)
    for (path, expected), answer in zip(inputs, answers):
        file = escape(str(path))
        if isinstance(answer, str):
            table.add_row(file, "[red]error", "", escape(answer))
        elif answer.verdict == "not a class":
            table.add_row(file, "[yellow]none", f"{answer.confidence:.1%}", answer.message)
        else:
            rest = ", ".join(f"{escape(label)} {p:.1%}" for label, p in answer.top[1:])
            unsure = " [yellow](not sure)[/]" if answer.verdict == "not sure" else ""
            right = expected is None or answer.label == expected
            label = escape(answer.label) if right else f"[red]{escape(answer.label)}[/]"
            table.add_row(file, label, f"{answer.confidence:.1%}{unsure}", rest)
    return table
