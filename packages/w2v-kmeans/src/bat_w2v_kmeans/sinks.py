"""Where a fit's frames go: the k-means sample (and, in ``run``, the frame cache too).

A file's rows join the sample only when the file is done, so a file that fails half-way (a
decoding error after ten minutes) leaves nothing in it, and a run resumed from the cache fills
the very same sample. Until then they wait in a sample of their own, bounded like the main one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bat_core.dataset import DatasetItem
from bat_core.kmeans import HashedSample
from bat_core.runner import Assembler, FileInfo, Piece, StoreSink
from bat_core.values import require_finite
from bat_w2v_kmeans.forward import SampleRows, check_finite_rows


class SampleSink:
    """Runner sink: every file's rows into ``sample``; counts what was done and what failed, and why.

    Outputs are ``SampleRows`` (chosen on the device) or frame blocks whose first row is ``piece.meta``
    (cached frames); ``add_rows`` takes rows at a known position (the frame cache's pass)."""

    def __init__(self, sample: HashedSample):
        self.sample = sample
        self.pending: dict[str, HashedSample] = {}
        self.done_files: list[str] = []
        self.failures: list[tuple[str, str]] = []

    def _pending(self, item: DatasetItem) -> HashedSample:
        if item.file_name not in self.pending:
            self.pending[item.file_name] = HashedSample(self.sample.capacity, self.sample.dim, self.sample.seed,
                                                        self.sample.dtype)
        return self.pending[item.file_name]

    def add(self, item: DatasetItem, piece: Piece, output: Any) -> None:
        if isinstance(output, SampleRows):
            check_finite_rows(output.non_finite, item.file_name)
            self._pending(item).add_selected(output.rows, output.priorities, output.offered)
        else:
            self.add_rows(item, int(piece.meta), output)

    def add_rows(self, item: DatasetItem, start: int, rows: np.ndarray) -> None:
        require_finite(rows, f"frames of {item.file_name}")
        self._pending(item).add(item.file_name, start, rows)

    def done(self, item: DatasetItem, info: FileInfo) -> None:
        pending = self.pending.pop(item.file_name, None)
        if pending is not None:
            self.sample.merge(pending)
        self.done_files.append(item.file_name)

    def fail(self, item: DatasetItem, reason: str) -> None:
        self.pending.pop(item.file_name, None)
        self.failures.append((item.file_name, reason))


class CachingSampleSink:
    """run's one encoder pass: each window's own frames into the frame cache (through the store) and the
    sample. Frames come in recording order, so a file's next row position is what it holds so far."""

    def __init__(self, store, assembler: Callable[[DatasetItem, Any], Assembler], sample: HashedSample):
        self.cache = StoreSink(store, assembler)
        self.samples = SampleSink(sample)
        self.positions: dict[str, int] = {}

    def add(self, item: DatasetItem, piece: Piece, frames: np.ndarray) -> None:
        self.cache.add(item, piece, frames)
        position = self.positions.get(item.file_name, 0)
        self.samples.add_rows(item, position, frames)
        self.positions[item.file_name] = position + len(frames)

    def done(self, item: DatasetItem, info: FileInfo) -> None:
        self.positions.pop(item.file_name, None)
        self.cache.done(item, info)
        self.samples.done(item, info)

    def fail(self, item: DatasetItem, reason: str) -> None:
        self.positions.pop(item.file_name, None)
        self.cache.fail(item, reason)
        self.samples.fail(item, reason)
