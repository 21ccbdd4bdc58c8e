"""Read IDX files (the MNIST file format), gzip-compressed or raw.

IDX layout: two zero bytes, a type byte (0x08 = unsigned byte), a byte giving the number of
dimensions, then one big-endian uint32 per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.files import atomic_write_bytes

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
MAX_BYTES = 256 * 1024 * 1024  # MNIST's largest file is 47 MB; a file that declares more is refused


class IdxFormatError(DigitkitError):
    """The file is not a valid IDX file of the expected kind."""


class _Source:
    """The bytes of an IDX file, raw or gzip, read only as far as asked: the header says how large the
    data is, so a file that claims too much is refused before its data is read or inflated (a few KB
    of gzip can expand to gigabytes)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.file = open(path, "rb")
        except FileNotFoundError:
            raise IdxFormatError(f"{path}: file not found") from None
        except OSError as err:
            raise IdxFormatError(f"{path}: cannot read ({err.strerror})") from None
        self.inflate = zlib.decompressobj(wbits=31) if self.file.read(2) == _GZIP_MAGIC else None
        self.file.seek(0)
        self.data = bytearray()
        self.pending = b""

    def take(self, n: int) -> bytes:
        """The first ``n`` bytes of the (inflated) data, or fewer if it ends before."""
        try:
            while len(self.data) < n:
                if self.inflate is None:
                    chunk = self.file.read(n - len(self.data))
                else:
                    if not self.pending and not self.inflate.eof:
                        self.pending = self.file.read(1 << 16)
                    if self.inflate.eof or not self.pending:
                        if not self.inflate.eof and len(self.data) < n:
                            raise zlib.error("the stream ends early")
                        break
                    chunk = self.inflate.decompress(self.pending, n - len(self.data))
                    self.pending = self.inflate.unconsumed_tail
                if not chunk and self.inflate is None:
                    break
                self.data += chunk
        except zlib.error as err:
            raise IdxFormatError(f"{self.path}: corrupt or truncated gzip data ({err}); download the file again") from None
        except OSError as err:
            raise IdxFormatError(f"{self.path}: cannot read ({err.strerror or err})") from None
        return bytes(self.data[:n])

    def close(self) -> None:
        self.file.close()


def read_idx(path: str | Path, ndim: int, expected_shape: tuple[int | None, ...] = ()) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions into a uint8 array.

    ``expected_shape`` may fix trailing dimensions (``None`` = any), e.g. ``(None, 28, 28)``.
    Raises :class:`IdxFormatError` naming the file and what is wrong.
    """
    path = Path(path)
    source = _Source(path)
    try:
        return _read(source, path, ndim, expected_shape)
    finally:
        source.close()


def _read(source: _Source, path: Path, ndim: int, expected_shape) -> np.ndarray:
    head = source.take(4)
    header = 4 + 4 * ndim
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise IdxFormatError(f"{path}: not an IDX file (bad magic number {head[:4].hex() or 'empty'})")
    if head[2] != _UBYTE:
        raise IdxFormatError(f"{path}: IDX data type 0x{head[2]:02x} is not unsigned byte (0x08)")
    if head[3] != ndim:
        kind = {1: "labels", 3: "images"}.get(ndim, f"{ndim}-d data")
        raise IdxFormatError(
            f"{path}: has {head[3]} dimension(s), expected {ndim} ({kind}); is this the right file?"
        )
    head = source.take(header)
    if len(head) < header:
        raise IdxFormatError(f"{path}: truncated header ({len(head)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(head, ">u4", count=ndim, offset=4))
    for axis, (got, want) in enumerate(zip(shape, expected_shape)):
        if want is not None and got != want:
            raise IdxFormatError(f"{path}: dimension {axis} is {got}, expected {want}")
    size = math.prod(shape)
    if header + size > MAX_BYTES:
        raise IdxFormatError(f"{path}: its header declares {shape} = {size:,} values, more than the "
                             f"{MAX_BYTES // 2**20} MiB of any dataset digitkit reads; is this the right file?")
    data = source.take(header + size + 1)  # one byte more: to notice trailing bytes
    if len(data) - header != size:
        state = "truncated" if len(data) - header < size else "has trailing bytes"
        held = f"{len(data) - header}" if len(data) - header < size else "more"
        raise IdxFormatError(f"{path}: {state}: header says {shape} = {size} values, file holds {held}")
    return np.frombuffer(data, np.uint8, count=size, offset=header).reshape(shape).copy()


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8 array as IDX (gzip when ``compress`` or the name ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        blob = gzip.compress(blob, mtime=0)
    atomic_write_bytes(path, blob)
