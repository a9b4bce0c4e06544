"""Stored arrays read a block of rows at a time, by seek and read: never whole, never memory-mapped.

A memory map's touched pages count as the process's resident memory, so streaming a long file
through one grows RSS with the file. The store writes growing outputs so that rows along time
are contiguous on disk: C-ordered ``(T, ...)`` arrays, and Fortran-ordered ``(n, T)`` spectrograms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class StoredRows:
    """Where the rows (steps along time) of a stored .npy array are."""

    path: Path
    rows: int  # steps along time
    row_shape: tuple[int, ...]  # the shape of one step: (hidden,) for frames, (n_mels,) for a spectrogram
    dtype: np.dtype
    offset: int  # bytes before the first value

    @classmethod
    def open(cls, path: str | Path) -> StoredRows:
        """Read the header; ValueError for an array whose time steps are not contiguous or that is cut short."""
        path = Path(path)
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
        if fortran and len(shape) != 2:
            raise ValueError(f"{path}: a Fortran-ordered array must be (n, T), got {shape}")
        rows, row_shape = (shape[1], (shape[0],)) if fortran else (shape[0], tuple(shape[1:]))
        stored = cls(path, int(rows), tuple(int(n) for n in row_shape), np.dtype(dtype), int(offset))
        expected = offset + stored.rows * stored.row_bytes
        if path.stat().st_size < expected:
            raise ValueError(f"{path} is cut short ({path.stat().st_size} of {expected} bytes)")
        return stored

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize

    def read(self, start: int, count: int) -> np.ndarray:
        """Rows ``start .. start+count`` (fewer at the end), shape ``(t, *row_shape)``."""
        start = max(0, min(start, self.rows))
        count = max(0, min(count, self.rows - start))
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + start * self.row_bytes)
            data = handle.read(count * self.row_bytes)
        return np.frombuffer(data, dtype=self.dtype).reshape(count, *self.row_shape).copy()

    def blocks(self, rows_per_block: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, block) over the whole array."""
        for start in range(0, self.rows, rows_per_block):
            yield start, self.read(start, rows_per_block)
