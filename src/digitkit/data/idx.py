"""Read IDX files (the MNIST file format), gzip-compressed or raw.

IDX layout: two zero bytes, a type byte (0x08 = unsigned byte), a byte giving the number of
dimensions, then one big-endian uint32 per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.files import atomic_write_bytes

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
MAX_BYTES = 256 * 1024 * 1024  # MNIST's largest file is 47 MB; a file that inflates past this is refused


class IdxFormatError(DigitkitError):
    """The file is not a valid IDX file of the expected kind."""


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise IdxFormatError(f"{path}: file not found") from None
    except OSError as err:
        raise IdxFormatError(f"{path}: cannot read ({err.strerror})") from None
    if raw[:2] != _GZIP_MAGIC:
        data = raw
    else:
        # Inflate in a bounded way: a few KB of gzip can expand to gigabytes (a zip bomb).
        inflate = zlib.decompressobj(wbits=31)
        try:
            data = inflate.decompress(raw, MAX_BYTES + 1)
            if not inflate.eof and len(data) <= MAX_BYTES:
                raise zlib.error("the stream ends early")
        except zlib.error as err:
            raise IdxFormatError(f"{path}: corrupt or truncated gzip data ({err}); download the file again") from None
    if len(data) > MAX_BYTES:
        raise IdxFormatError(f"{path}: holds more than {MAX_BYTES // 2**20} MiB of data, larger than any dataset "
                             "digitkit reads; is this the right file?")
    return data


def read_idx(path: str | Path, ndim: int, expected_shape: tuple[int | None, ...] = ()) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions into a uint8 array.

    ``expected_shape`` may fix trailing dimensions (``None`` = any), e.g. ``(None, 28, 28)``.
    Raises :class:`IdxFormatError` naming the file and what is wrong.
    """
    path = Path(path)
    data = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxFormatError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    if data[2] != _UBYTE:
        raise IdxFormatError(f"{path}: IDX data type 0x{data[2]:02x} is not unsigned byte (0x08)")
    if data[3] != ndim:
        kind = {1: "labels", 3: "images"}.get(ndim, f"{ndim}-d data")
        raise IdxFormatError(
            f"{path}: has {data[3]} dimension(s), expected {ndim} ({kind}); is this the right file?"
        )
    if len(data) < header:
        raise IdxFormatError(f"{path}: truncated header ({len(data)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    for axis, (got, want) in enumerate(zip(shape, expected_shape)):
        if want is not None and got != want:
            raise IdxFormatError(f"{path}: dimension {axis} is {got}, expected {want}")
    size = int(np.prod(shape))
    if len(data) - header != size:
        state = "truncated" if len(data) - header < size else "has trailing bytes"
        raise IdxFormatError(
            f"{path}: {state}: header says {shape} = {size} values, file holds {len(data) - header}"
        )
    return np.frombuffer(data, np.uint8, count=size, offset=header).reshape(shape).copy()


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8 array as IDX (gzip when ``compress`` or the name ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        blob = gzip.compress(blob, mtime=0)
    atomic_write_bytes(path, blob)
