"""Stored mel spectrograms read a few frames at a time, never whole.

bat-core writes mels as Fortran-ordered ``(n_mels, T)`` .npy files, so frames ``s .. s+n``
are one contiguous run of bytes: a crop is one seek and one read. Memory does not grow
with a file's length, and no file stays open or mapped between reads (a corpus of
100,000 files holds no descriptors). Files written C-ordered (before bat-core 0.2) are
read through a memory map, the crop copied out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK_FRAMES = 8192  # frames per block when a whole file is streamed (4 MB at 128 bands)


@dataclass(frozen=True)
class MelFile:
    """Where a stored mel's frames are, from its .npy header."""

    path: Path
    n_mels: int
    frames: int
    offset: int  # bytes before the first value
    fortran: bool

    @classmethod
    def open(cls, path: str | Path, n_mels: int) -> MelFile:
        """Read the header; ValueError if the file is not a float32 ``(n_mels, T)`` array."""
        path = Path(path)
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
        if len(shape) != 2 or shape[0] != n_mels or dtype != np.dtype(np.float32):
            raise ValueError(f"{path} holds {dtype}{tuple(shape)}, not a float32 mel of {n_mels} bands")
        expected = offset + shape[0] * shape[1] * 4
        if path.stat().st_size < expected:
            raise ValueError(f"{path} is cut short ({path.stat().st_size} of {expected} bytes)")
        return cls(path, int(shape[0]), int(shape[1]), int(offset), bool(fortran))

    def read(self, start: int, count: int) -> np.ndarray:
        """Frames ``start .. start+count`` (fewer at the end) as float32 ``(n_mels, t)``."""
        start = max(0, min(start, self.frames))
        count = max(0, min(count, self.frames - start))
        if not self.fortran:
            mapped = np.load(self.path, mmap_mode="r")
            crop = np.array(mapped[:, start:start + count], dtype=np.float32)
            del mapped
            return crop
        size = count * self.n_mels * 4
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + start * self.n_mels * 4)
            data = handle.read(size)
        if len(data) != size:
            raise OSError(f"{self.path} ended early reading frames {start}..{start + count}")
        return np.ascontiguousarray(np.frombuffer(data, dtype=np.float32).reshape(count, self.n_mels).T)

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """The whole file, ``frames`` frames at a time."""
        for start in range(0, self.frames, frames):
            yield self.read(start, frames)
