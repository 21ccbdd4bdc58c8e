"""`digitkit info`: versions, device, where the data comes from."""

from __future__ import annotations

from digitkit import DigitkitError, __version__
from digitkit.cli.base import Command, command, escape


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
        from digitkit.train.precision import training_arithmetic

        console.print(f"device: {dev.type} ({name}), {torch.get_num_threads()} CPU threads; "
                      f"training arithmetic: {training_arithmetic(dev)}")
        for dataset in SPECS:
            try:
                where = locate(dataset, download=False)["train_images"].parent
            except DigitkitError:
                where = "not found locally (downloaded on first use)"
            console.print(f"data {dataset}: {escape(where)}")
        return 0
