"""Imports of heavy optional libraries, with their import-time chatter silenced, or a clear error
naming the extra that installs them."""

from __future__ import annotations

import contextlib
import logging
import os
import sys


def coremltools():
    """Import coremltools without its Linux warnings (no Core ML runtime, untested torch version):
    digitkit never asks coremltools to run a model, so they only confuse."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    # coremltools imports torchao where it is installed (the litert extra brings it), which warns
    # about each GPU kernel library it cannot load on this machine.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)  # torchao's enum registration notice
    import coremltools as ct

    return ct


# What Keras imports at start-up when it is installed, for features digitkit never uses: JAX for
# its Orbax checkpoint callback, scikit-learn for its estimator wrappers, matplotlib's pyplot for its
# image gallery. 2-2.5 s of every command (digitkit's pictures import matplotlib themselves).
KERAS_EXTRAS = ("jax", "sklearn", "matplotlib")


class _KerasExtrasSkipped:
    """An import hook that answers ``import jax`` / ``sklearn`` / ``matplotlib`` with ImportError when
    Keras' own modules ask (Keras imports each inside ``try: ... except ImportError``); any other importer,
    such as the LiteRT converter, gets them as usual. No library option turns these imports off."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in KERAS_EXTRAS:
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "digitkit.deps")):
            frame = frame.f_back
        if frame is not None and frame.f_globals.get("__name__", "").startswith("keras."):
            raise ModuleNotFoundError(f"{name} is not loaded for Keras in digitkit's command line", name=name)
        return None


@contextlib.contextmanager
def keras_extras_skipped():
    """While the block runs, Keras loads without :data:`KERAS_EXTRAS`. For the command line's own
    process only: in a notebook, Keras' scikit-learn wrappers must keep working."""
    hook = _KerasExtrasSkipped()
    sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        sys.meta_path.remove(hook)


LITERT_EXTRA = 'pip install "digitkit[litert]"'
LITERT_MODULES = ("litert_torch", "ai_edge_quantizer", "ai_edge_litert")  # converter, quantizer, interpreter


def litert_installed() -> bool:
    """Whether the optional LiteRT libraries are there (without importing them: they are slow to load)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in LITERT_MODULES)


def litert(module: str, what: str):
    """Import one of Google's LiteRT libraries (``litert_torch``, ``ai_edge_quantizer``,
    ``ai_edge_litert``), or say which extra installs them."""
    import importlib

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # absl/TF log lines at import
    logging.getLogger("torchao").setLevel(logging.ERROR)  # litert-torch imports it: GPU kernels it cannot load
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        from digitkit import DigitkitError

        raise DigitkitError(f"{what} needs Google's LiteRT libraries ({err.name} is not installed); "
                            f"install them with: {LITERT_EXTRA}") from None


@contextlib.contextmanager
def native_output_silenced():
    """Silence what native libraries print on file descriptors 1 and 2 (LiteRT's C++ logs, TF's absl
    lines, the XNNPACK notice), which Python's own redirection does not reach. Only for short calls:
    the whole process's output is muted meanwhile."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
