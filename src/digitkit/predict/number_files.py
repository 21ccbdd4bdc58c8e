"""Reading numbers from files, for `digitkit read`: one answer per file, and the expected numbers of
labelled images (a ``numbers.csv`` beside them)."""

from __future__ import annotations

import csv
from pathlib import Path

from digitkit.classifier import Classifier
from digitkit.data.normalize import NormalizeError
from digitkit.predict.files import load_file
from digitkit.predict.numbers import NumberAnswer, read_number


def read_number_files(classifier: Classifier, paths: list[Path]) -> list[NumberAnswer | str]:
    """One answer per file, in order, or the reason (a string) that file alone could not be read."""
    out: list[NumberAnswer | str] = []
    for path in paths:
        try:
            out.append(read_number(classifier, load_file(path)))
        except NormalizeError as err:
            out.append(str(err))
    return out


def expected_numbers(paths: list[Path]) -> dict[Path, str]:
    """{image path: number} from the ``numbers.csv`` (``file,number``) beside labelled images."""
    expected = {}
    for folder in sorted({Path(p).parent for p in paths}):
        table = folder / "numbers.csv"
        if table.is_file():
            with open(table, newline="") as rows:
                for row in csv.DictReader(rows):
                    if row.get("file") and row.get("number") is not None:
                        expected[(folder / row["file"]).resolve()] = row["number"].strip()
    return expected
