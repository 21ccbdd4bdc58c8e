"""`digitkit train`: train a model into a run folder, then write its ONNX file."""

from __future__ import annotations

import argparse
import os
import time

from digitkit import DigitkitError
from digitkit.cli.base import Command, command, escape, without, STARTED


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

        from digitkit.train import TrainConfig
        from digitkit.train.prefetch import prefetch

        if args.nproc is not None:
            from digitkit.train.distributed import launch

            return launch(without(args.argv, "--nproc"), args.nproc)
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
        config = TrainConfig.from_preset(given.pop("preset"), given.pop("model"), **given)
        config.validate()  # a bad setting is told at once, before torch and Keras load
        prefetched = prefetch(config)  # the epoch's images, made while torch and Keras import
        try:
            from digitkit.train import train

            run = train(config, prefetched=prefetched)
        finally:
            if prefetched:
                prefetched.close()
        if os.environ.get("RANK", "0") == "0":  # under torchrun, the main process alone
            _finish(run)
        return 0


def _finish(run) -> None:
    """Export the run's ONNX file, which `digitkit predict` and `serve` run (they start in about a
    second with it, without torch), and say where the command's time went."""
    from digitkit.ui import console
    from digitkit.verify import after_training

    started = time.perf_counter()
    try:
        after_training(run)
    except DigitkitError as err:  # the model is trained and saved: say so, and carry on
        console.print(f"[yellow]The run is complete, but its ONNX export failed ({escape(str(err))}); predict "
                      "and serve will try again when first used.[/]")
        return
    steps = run.metrics.get("seconds", {})
    seconds = {"start-up": started - STARTED - sum(steps.values())} | steps | {"ONNX": time.perf_counter() - started}
    shown = ", ".join(f"{step} {value:.1f} s" for step, value in seconds.items())
    console.print(f"Ready for predict and serve: {escape(str(run.export_path('.onnx')))}")
    console.print(f"[dim]{time.perf_counter() - STARTED:.1f} s in all: {escape(shown)}[/]")
