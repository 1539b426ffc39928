"""Read IDX files (the MNIST family's format), plain or gzipped, checking every header field."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import DatasetError

_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """The array an IDX file holds (magic 0x0000TTDD: type TT, DD dimensions, then big-endian sizes)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read IDX file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (the first two bytes must be zero)")
    dtype, ndim = data[2], data[3]
    if dtype not in _DTYPES:
        raise DatasetError(f"{path}: unknown IDX element type 0x{dtype:02x}")
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dt = np.dtype(_DTYPES[dtype])
    expected = int(np.prod(shape)) * dt.itemsize
    if len(data) - head != expected:
        raise DatasetError(
            f"{path}: IDX header says shape {shape} ({expected} bytes of data), file holds {len(data) - head}"
        )
    return np.frombuffer(data, dtype=dt, offset=head).reshape(shape).astype(dt.newbyteorder("="))


def find_idx(folder: Path, stem: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"{folder}: missing {stem} (or {stem}.gz)")
