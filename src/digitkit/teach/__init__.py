"""Stage 8: teach. Train a model of your own classes from drawings: the workspace that keeps them
(:mod:`~digitkit.teach.workspace`) and the background trainer (:mod:`~digitkit.teach.trainer`).
The Teach page's routes live in :mod:`digitkit.serve.teach_app`."""

from digitkit.teach.trainer import TeachState, Trainer
from digitkit.teach.workspace import MIN_PER_CLASS, TeachError, Workspace, zip_folder

__all__ = ["MIN_PER_CLASS", "TeachError", "TeachState", "Trainer", "Workspace", "zip_folder"]
