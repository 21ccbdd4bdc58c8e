"""Imports of heavy optional libraries, with their import-time chatter silenced."""

from __future__ import annotations

import logging


def coremltools():
    """Import coremltools without its Linux warnings (no Core ML runtime, untested torch version):
    digitkit never asks coremltools to run a model, so they only confuse."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct

    return ct
