"""Batches by length, decided per piece, so a piece's padding never depends on its batch mates."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bat_core.runner import Piece


def bucket_length(length: int, bucket: int, minimum: int = 1, maximum: int | None = None) -> int:
    """``length`` rounded up to a multiple of ``bucket``, within ``[minimum, maximum]``."""
    rounded = max(minimum, math.ceil(length / bucket) * bucket)
    return min(rounded, maximum) if maximum is not None else rounded


class LengthBatcher:
    """The runner's batches: pieces of equal ``length`` grouped (so a piece's padding never depends on its batch
    mates); a group goes out when full (``max_items`` pieces, or ``max_length`` summed length), or, when more
    than two batches' worth is pending (in pieces or in summed length), the largest group goes out as it is (a
    bound on what waits)."""

    def __init__(self, max_items: int, max_length: int | None):
        if max_items < 1:
            raise ValueError(f"batch size must be >= 1, got {max_items}")
        self.max_items, self.max_length = max_items, max_length
        self.groups: dict[int, list[Piece]] = defaultdict(list)
        self.pending = 0
        self.pending_length = 0

    def _full(self, group: list[Piece]) -> bool:
        length = group[0].length
        return len(group) >= self.max_items or (self.max_length is not None and (len(group) + 1) * length > self.max_length)

    def add(self, piece: Piece) -> list[list[Piece]]:
        group = self.groups[piece.length]
        group.append(piece)
        self.pending += 1
        self.pending_length += piece.length
        ready = []
        if self._full(group):
            ready.append(self._take(piece.length))
        while self._too_much_waiting():  # too many partial groups: send the largest
            ready.append(self._take(max(self.groups, key=lambda length: (len(self.groups[length]) * length, -length))))
        return ready

    def _too_much_waiting(self) -> bool:
        return self.pending > 2 * self.max_items or (self.max_length is not None and self.pending_length > 2 * self.max_length)

    def _take(self, length: int) -> list[Piece]:
        group = self.groups.pop(length)
        self.pending -= len(group)
        self.pending_length -= len(group) * length
        return group

    def flush(self) -> list[list[Piece]]:
        return [self._take(length) for length in sorted(self.groups)]

    def drop(self, file: int) -> None:
        for length in list(self.groups):
            kept = [piece for piece in self.groups[length] if piece.file != file]
            self.pending -= len(self.groups[length]) - len(kept)
            self.pending_length -= (len(self.groups[length]) - len(kept)) * length
            if kept:
                self.groups[length] = kept
            else:
                del self.groups[length]

    def shrink(self) -> None:
        self.max_items = max(1, self.max_items // 2)
        if self.max_length is not None:
            self.max_length = max(1, self.max_length // 2)
