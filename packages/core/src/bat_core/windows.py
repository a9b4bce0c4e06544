"""Split long recordings into overlapping windows for encoders, then stitch frames back.

Each window keeps the frames whose centres fall in its own share of the overlap
(half to each neighbour), so the stitched sequence has one frame per position and
no seam frames computed from a truncated context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def window_bounds(n_samples: int, window: int, hop: int) -> list[tuple[int, int]]:
    """``(start, end)`` sample bounds covering ``n_samples``; the last window may be shorter."""
    if window <= 0 or hop <= 0 or hop > window:
        raise ValueError(f"need 0 < hop <= window, got window={window}, hop={hop}")
    if n_samples <= window:
        return [(0, n_samples)]
    bounds = []
    start = 0
    while True:
        end = min(start + window, n_samples)
        bounds.append((start, end))
        if end >= n_samples:
            return bounds
        start += hop


def split_windows(samples: np.ndarray, window: int, hop: int) -> list[np.ndarray]:
    return [samples[start:end] for start, end in window_bounds(len(samples), window, hop)]


def stitch_frames(
    window_frames: Sequence[np.ndarray],
    bounds: Sequence[tuple[int, int]],
    samples_per_frame: float,
) -> np.ndarray:
    """Join per-window frame arrays (frames on axis 0) into one sequence.

    ``samples_per_frame`` is the encoder's stride in input samples.
    """
    if len(window_frames) != len(bounds):
        raise ValueError("one frame array per window is needed")
    if len(window_frames) == 1:
        return np.asarray(window_frames[0])
    starts = [start for start, _ in bounds]
    owned_from = [0.0] + [
        (bounds[i][0] + bounds[i - 1][1]) / 2 for i in range(1, len(bounds))
    ]
    owned_to = owned_from[1:] + [float("inf")]
    kept = []
    for frames, start, lo, hi in zip(window_frames, starts, owned_from, owned_to):
        centres = start + (np.arange(len(frames)) + 0.5) * samples_per_frame
        kept.append(np.asarray(frames)[(centres >= lo) & (centres < hi)])
    return np.concatenate(kept, axis=0)
