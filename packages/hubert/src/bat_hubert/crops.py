"""Recordings -> fixed-length training crops at the model's rate (numpy only: runs in worker processes).

Each crop carries its valid length (a recording's last crop, or a whole short clip, is padded) and
the index of its recording, so the crops fit in one float32 array that bat-core's ``HashedSample``
keeps as a capped reservoir: the same crops whatever the file order or the workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bat_core.runner import Piece
from bat_core.windows import Windower

NORMALISE_EPSILON = 1e-7  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm's


@dataclass(frozen=True)
class CropPieces:
    """Piece maker: the converted stream -> crops of ``crop`` samples, each normalised as the feature
    extractor normalises a window (zero mean, unit variance), tails padded with zeros."""

    crop: int
    min_length: int  # shortest tail kept: one frame

    @property
    def piece_bytes(self) -> int:
        return 4 * self.crop

    def __call__(self, blocks: Iterator[np.ndarray]) -> Iterator[Piece]:
        windower = Windower(self.crop, self.crop)
        for block in blocks:
            for window in windower.push(block):
                yield self.piece(window.data)
        for window in windower.finish():
            if len(window.data) >= self.min_length:
                yield self.piece(window.data)

    def piece(self, samples: np.ndarray) -> Piece:
        samples = np.asarray(samples, dtype=np.float32)
        valid = len(samples)
        mean, variance = samples.mean(dtype=np.float64), samples.var(dtype=np.float64)
        data = np.zeros(self.crop, dtype=np.float32)
        data[:valid] = (samples - mean) / np.sqrt(variance + NORMALISE_EPSILON)
        return Piece(data, length=self.crop, meta=valid)
