"""digitkit: train a handwritten-digit CNN with Keras, export it to Core ML and ONNX,
verify the exported file, and try it on real handwriting.

The pipeline reads as the package layout:
``data`` → ``models`` → ``train`` → ``evaluate`` → ``export`` → ``verify`` → ``predict`` → ``serve``.
"""

import os

# Keras reads its backend once, at first import; digitkit runs on torch unless the user chose.
os.environ.setdefault("KERAS_BACKEND", "torch")

__version__ = "0.3.0"  # the package version (pyproject.toml reads it from here)


class DigitkitError(Exception):
    """An error the user can fix; the CLI prints its message without a traceback."""


class ConfigError(DigitkitError):
    """A setting with a value that cannot work; ``setting`` names it (the CLI names its flag)."""

    def __init__(self, setting: str, message: str):
        super().__init__(f"{setting.replace('_', ' ')} {message}")
        self.setting, self.message = setting, message
