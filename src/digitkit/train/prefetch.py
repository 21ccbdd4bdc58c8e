"""The epoch's images built in a second process while the command imports torch and Keras.

``digitkit train`` spends 3-5 s importing torch and Keras before it can build a model, and 1-4 s
making the epoch's images (other writers' scans, wrong cuts: NumPy, SciPy and torch on the CPU).
Neither needs the other, so the command starts the second in a fresh Python process first: the
settings go in pickled on its stdin, the arrays come back pickled on its stdout. A plain subprocess
rather than multiprocessing: no inherited buffers or threads (a fork flushed the parent's stdout
twice), no re-import of the caller's main script (spawn does that). Any failure there (a bad
setting, a missing file) is left to the training itself, which then builds the arrays in its own
process and reports the error as it always does. This module imports neither torch nor Keras.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys

from digitkit.train.config import TrainConfig

_CHILD = "from digitkit.train.prefetch import _child; _child()"


class Prefetch:
    """``EpochArrays.build`` for ``config`` running in a child process; :meth:`arrays` waits for it."""

    def __init__(self, config: TrainConfig):
        self._process = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            pickle.dump(config, self._process.stdin)
            self._process.stdin.close()
        except OSError:  # the child is gone already; arrays() says so
            pass

    def arrays(self):
        """The child's ``EpochArrays``, or None where it failed (the caller then builds them)."""
        try:
            answer = pickle.load(self._process.stdout)
            self._process.wait(timeout=10)  # it ends as soon as it has answered
            return answer
        except (EOFError, OSError, pickle.UnpicklingError, subprocess.TimeoutExpired):  # died or hung
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Stop the child if it is still working (the training failed or was stopped first)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process.stdout.close()


def _child() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops this child
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes where stderr goes, not into the answer
    config = pickle.load(sys.stdin.buffer)
    try:
        from digitkit.data import load_dataset
        from digitkit.train.mix import EpochArrays

        arrays = EpochArrays.build(config, load_dataset(config.dataset, config.data_dir))
    except Exception:  # reported by the parent, which builds the arrays again and meets the same error
        arrays = None
    pickle.dump(arrays, answer, protocol=pickle.HIGHEST_PROTOCOL)
    answer.close()
    os._exit(0)  # at once: tearing torch down would keep the parent waiting


def prefetch(config: TrainConfig) -> Prefetch | None:
    """A :class:`Prefetch` where it pays: a built-in dataset, a fresh run, one process."""
    if config.data is not None or config.resume or "WORLD_SIZE" in os.environ:
        return None
    return Prefetch(config)
