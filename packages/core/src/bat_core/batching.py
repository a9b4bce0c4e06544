"""Batches by length, decided per item, so an item's padding never depends on its batch mates."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def bucket_length(length: int, bucket: int, minimum: int = 1, maximum: int | None = None) -> int:
    """``length`` rounded up to a multiple of ``bucket``, within ``[minimum, maximum]``."""
    rounded = max(minimum, math.ceil(length / bucket) * bucket)
    return min(rounded, maximum) if maximum is not None else rounded


def length_batches(run_lengths: Sequence[int], batch_size: int, max_total: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of equal run length (shortest first): at most ``batch_size``
    items and, when given, at most ``max_total`` summed length (one item always fits), so a batch
    of long windows does not take many times the memory of a batch of short ones."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    order = sorted(range(len(run_lengths)), key=lambda i: (run_lengths[i], i))
    batches: list[list[int]] = []
    for index in order:
        length = run_lengths[index]
        if (batches and len(batches[-1]) < batch_size and run_lengths[batches[-1][0]] == length
                and (max_total is None or (len(batches[-1]) + 1) * length <= max_total)):
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def chunks(items: Iterable[Item], size: int, max_total: float | None = None,
           size_of: Callable[[Item], float] | None = None) -> Iterator[list[Item]]:
    """Consecutive lists of at most ``size`` items and, when given, at most ``max_total`` summed
    ``size_of(item)`` (one item always fits): a run of long recordings is held a few at a time."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    if max_total is not None and size_of is None:
        raise ValueError("max_total needs size_of")
    limit = math.inf if max_total is None else max_total
    chunk: list[Item] = []
    total = 0.0
    for item in items:
        weight = size_of(item) if max_total is not None else 0.0
        if chunk and (len(chunk) >= size or total + weight > limit):
            yield chunk
            chunk, total = [], 0.0
        chunk.append(item)
        total += weight
    if chunk:
        yield chunk
