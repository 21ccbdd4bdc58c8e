"""Opening one image file for reading: what `predict` and `read` share."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from digitkit.data.normalize import NormalizeError, load_image


def load_file(path: Path) -> Image.Image:
    """The image in ``path``; raises :class:`NormalizeError` with the reason that file alone cannot
    be read. Only regular files are opened: a FIFO or a device would block or never end."""
    if not path.is_file():
        raise NormalizeError("file not found" if not path.exists() else "not a file")
    try:
        return load_image(path)
    except OSError as err:  # unreadable (permissions, I/O): this file only
        raise NormalizeError(f"cannot read ({err.strerror or err})") from None
