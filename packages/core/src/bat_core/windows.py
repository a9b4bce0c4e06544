"""Cut a stream (samples or frames along axis 0) into overlapping windows for encoders.

A recording no longer than a window is one window. A longer one gets windows every ``hop``
until one reaches its end (the last may be shorter). Each window owns the positions between
the midpoints of its overlaps with its neighbours (half of each overlap to each side), so an
encoder's outputs, kept where their centres fall in the owner's share, join into one
sequence with one output per position and no seam computed from a truncated context.

The windower works on a stream: it holds at most one window plus one block, and it knows a
window is the last only when the stream ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    """Where a window sits in its stream and which share of it the window owns."""

    start: int  # position of the window's first element in the stream
    owned_from: float  # this window's share of the stream: [owned_from, owned_to)
    owned_to: float

    def owned(self, n_outputs: int, stride: float) -> slice:
        """The outputs (output i centred at ``start + (i + 0.5) * stride``) that belong to this window."""
        first = max(0, math.ceil((self.owned_from - self.start) / stride - 0.5))
        last = n_outputs if math.isinf(self.owned_to) else min(n_outputs, math.ceil((self.owned_to - self.start) / stride - 0.5))
        return slice(first, max(first, last))


@dataclass(frozen=True)
class Window:
    span: Span
    data: np.ndarray


class Windower:
    """``push`` blocks, get the windows they complete; ``finish`` gives the last one."""

    def __init__(self, window: int, hop: int):
        if window <= 0 or hop <= 0 or hop > window:
            raise ValueError(f"need 0 < hop <= window, got window={window}, hop={hop}")
        self.window, self.hop = window, hop
        self._buffer: list[np.ndarray] = []
        self._held = 0
        self._start = 0  # stream position of the buffer's first element
        self._count = 0

    def _owned_from(self) -> float:
        return 0.0 if self._count == 0 else self._start + (self.window - self.hop) / 2

    def push(self, block: np.ndarray) -> Iterator[Window]:
        if len(block):
            self._buffer.append(block)
            self._held += len(block)
        while self._held > self.window:  # more follows this window: it is not the last
            data = self._take()
            yield Window(Span(self._start, self._owned_from(), self._start + (self.window + self.hop) / 2), data[: self.window])
            self._buffer, self._held = [data[self.hop:]], len(data) - self.hop
            self._start += self.hop
            self._count += 1

    def finish(self) -> Iterator[Window]:
        if self._held:
            yield Window(Span(self._start, self._owned_from(), math.inf), self._take())
        self._buffer, self._held = [], 0

    def _take(self) -> np.ndarray:
        if len(self._buffer) > 1:
            self._buffer = [np.concatenate(self._buffer)]
        return self._buffer[0]


def windows_of(stream: np.ndarray, window: int, hop: int) -> list[Window]:
    """All windows of an array held in memory (the same as streaming it)."""
    windower = Windower(window, hop)
    return [*windower.push(stream), *windower.finish()]
