"""Per-frequency normalisation of log-mels, and its statistics streamed over a corpus.

numpy only: worker processes normalise mel windows with it and must not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MIN_STD = 1e-3  # a constant band (digital silence) is shifted, not blown up


@dataclass(frozen=True)
class MelNormalizer:
    """Per-frequency mean and standard deviation of the training files' frames."""

    mean: np.ndarray  # (n_mels,) float32
    std: np.ndarray  # (n_mels,) float32

    @classmethod
    def fit(cls, mels: Iterable[np.ndarray]) -> MelNormalizer:
        """From mels ``(n_mels, T)`` in memory (a notebook's); training streams ``MelStatistics`` instead."""
        statistics = MelStatistics()
        for mel in mels:
            statistics.add(mel)
        return statistics.normalizer()

    def normalise(self, mel: np.ndarray) -> np.ndarray:
        """``(n_mels, T)`` -> float32 ``(n_mels, T)``."""
        return ((mel - self.mean[:, None]) / self.std[:, None]).astype(np.float32)

    def normalise_frames(self, frames: np.ndarray) -> np.ndarray:
        """Frames ``(t, n_mels)`` -> float32 ``(n_mels, t)``, C-ordered (the model's layout)."""
        return np.ascontiguousarray(((frames - self.mean) / self.std).astype(np.float32).T)

    def denormalise(self, mel: np.ndarray) -> np.ndarray:
        return (mel * self.std[:, None] + self.mean[:, None]).astype(np.float32)


class MelStatistics:
    """Per-bin sums in float64, added block by block, so no file is ever held whole.

    Values are summed as offsets from the first block's mean (shifted sums): the variance
    then has no cancellation, whatever the level of the dB values.
    """

    def __init__(self):
        self.frames = 0
        self.shift: np.ndarray | None = None
        self.sums: np.ndarray | None = None
        self.squares: np.ndarray | None = None

    def add(self, block: np.ndarray) -> None:
        """A block of frames ``(n_mels, t)``."""
        if block.shape[1] == 0:
            return
        values = np.asarray(block, dtype=np.float64)
        if self.shift is None:
            self.shift = values.mean(axis=1)
            self.sums = np.zeros_like(self.shift)
            self.squares = np.zeros_like(self.shift)
        elif len(values) != len(self.shift):
            raise ValueError(f"a block of {len(values)} mel bands after blocks of {len(self.shift)}")
        offsets = values - self.shift[:, None]
        self.sums += offsets.sum(axis=1)
        self.squares += np.square(offsets).sum(axis=1)
        self.frames += values.shape[1]

    def normalizer(self) -> MelNormalizer:
        if self.frames == 0:
            raise ValueError("no frames to compute normalisation statistics from")
        mean_offset = self.sums / self.frames
        variance = np.maximum(self.squares / self.frames - mean_offset ** 2, 0.0)
        mean = self.shift + mean_offset
        return MelNormalizer(mean.astype(np.float32), np.maximum(np.sqrt(variance), MIN_STD).astype(np.float32))
