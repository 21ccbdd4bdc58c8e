"""Reader for Core ML's weight blob file (``weights/weight.bin`` in an ML Program package).

Format (MIL blob storage, version 2): a 64-byte header (uint32 count, uint32 version, padding), then
for each blob a 64-byte metadata record (uint32 sentinel 0xDEADBEEF, uint32 data type, uint64 size in
bytes, uint64 data offset, padding) followed by the data. A program's const op points at a blob by
the offset of its metadata record. Written here (not taken from coremltools' C++ reader) so the
verifier shares no code with the writer it checks.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from digitkit import DigitkitError
from digitkit.coreml.package import MAX_WEIGHT_BYTES, read_bounded

SENTINEL = 0xDEADBEEF
BLOB_DTYPES = {1: np.float16, 2: np.float32, 3: np.uint8, 4: np.int8}


class BlobFile:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.data = read_bounded(self.path, MAX_WEIGHT_BYTES, "weight file")
        if len(self.data) < 64:
            raise DigitkitError(f"{self.path}: weight file is truncated ({len(self.data)} bytes)")
        self.count, self.version = struct.unpack_from("<II", self.data, 0)
        if self.version != 2:
            raise DigitkitError(f"{self.path}: unsupported weight-file version {self.version} (expected 2)")

    def read(self, offset: int) -> np.ndarray:
        """The blob whose metadata record starts at ``offset``, as a flat array of its data type."""
        if offset + 64 > len(self.data):
            raise DigitkitError(f"{self.path}: blob offset {offset} is past the end of the file")
        sentinel, dtype_code, size, data_offset = struct.unpack_from("<IIQQ", self.data, offset)
        if sentinel != SENTINEL:
            raise DigitkitError(f"{self.path}: no blob at offset {offset} (bad sentinel 0x{sentinel:08x})")
        if dtype_code not in BLOB_DTYPES:
            raise DigitkitError(f"{self.path}: blob at offset {offset} has unsupported data type {dtype_code}")
        if data_offset + size > len(self.data):
            raise DigitkitError(f"{self.path}: blob at offset {offset} is truncated")
        return np.frombuffer(self.data, BLOB_DTYPES[dtype_code], count=size // np.dtype(BLOB_DTYPES[dtype_code]).itemsize,
                             offset=data_offset)
