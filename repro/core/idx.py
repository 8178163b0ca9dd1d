"""The IDX format of MNIST and Fashion-MNIST: gzip-compressed arrays of unsigned bytes behind a magic number
(0x0000080d, d = number of dimensions) and d big-endian sizes."""

import gzip
import zlib
from pathlib import Path

import numpy as np

from repro.core.errors import DataUnavailableError


def read_idx(path: Path, magic: int, fix: str) -> np.ndarray:
    """The array of a gzip-compressed IDX file of unsigned bytes, its shape checked against its header; every
    error names the file and `fix`."""
    try:
        with gzip.open(path, "rb") as f:
            blob = f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataUnavailableError(f"{path} is not a readable gzip file ({error}): {fix}") from error
    if len(blob) < 4 or int.from_bytes(blob[:4], "big") != magic:
        found = blob[:4].hex() if len(blob) >= 4 else "nothing"
        raise DataUnavailableError(f"{path}: IDX magic number {found}, expected {magic:08x} (unsigned bytes, "
                                   f"{magic & 0xFF} dimensions); {fix}")
    dims = magic & 0xFF
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    if len(blob) != header + int(np.prod(shape)) or shape[0] == 0:
        raise DataUnavailableError(f"{path}: header says shape {shape} ({header + int(np.prod(shape))} bytes), "
                                   f"the file holds {len(blob)} bytes: truncated or empty; {fix}")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape)
