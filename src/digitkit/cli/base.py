"""What every command shares: the registry, the base class, the command's clock, markup escaping."""

from __future__ import annotations

import argparse
import time

STARTED = time.perf_counter()  # the cli package loads first: the command's clock (start-up included)

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


def escape(text) -> str:
    from rich.markup import escape

    return escape(str(text))


def without(argv: list[str], flag: str) -> list[str]:
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


def image_arguments(parser) -> None:
    """What every command that reads images takes: ``[MODEL] IMAGES...`` (a first argument that is an
    image means the newest run: predict.model_and_images) and ``--json``."""
    parser.add_argument("inputs", nargs="+", metavar="[MODEL] IMAGES",
                        help="the model (run folder, .keras, .onnx, .tflite, .mlpackage or .mlmodel; default: "
                             "the newest run in ./runs), then image files, folders or glob patterns")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
