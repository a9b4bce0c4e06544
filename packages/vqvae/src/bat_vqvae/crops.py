"""Training samples: random fixed-length crops of stored mels, and the held-back split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bat_vqvae.mel_files import MelFile
from bat_vqvae.normalizer import MelNormalizer


@dataclass
class CropBatch:
    data: np.ndarray  # (B, n_mels, crop) float32, normalised, zero-padded past a short file's end
    mask: np.ndarray  # (B, crop) bool: True where a frame is real
    files: list[int]  # which file each crop came from: a non-finite loss names them

    @property
    def full(self) -> bool:
        """No padding anywhere (the loss needs no mask): decided on the host, no device sync."""
        return bool(self.mask.all())


def random_crops(files: Sequence[MelFile], batch_size: int, crop_frames: int, rng: np.random.Generator,
                 normalizer: MelNormalizer) -> CropBatch:
    """``batch_size`` crops of ``crop_frames`` from files drawn at random, each read from disk on its own."""
    n_mels = files[0].n_mels
    data = np.zeros((batch_size, n_mels, crop_frames), dtype=np.float32)
    mask = np.zeros((batch_size, crop_frames), dtype=bool)
    chosen = [int(index) for index in rng.integers(len(files), size=batch_size)]
    for row, index in enumerate(chosen):
        mel = files[index]
        start = int(rng.integers(mel.frames - crop_frames + 1)) if mel.frames > crop_frames else 0
        crop = normalizer.normalise(mel.read(start, crop_frames))
        data[row, :, : crop.shape[1]] = crop
        mask[row, : crop.shape[1]] = True
    return CropBatch(data, mask, chosen)


def split_holdout(names: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of training and held-back files; at least one of each when there are two files."""
    order = np.random.default_rng(seed).permutation(len(names))
    held = int(round(fraction * len(names)))
    held = min(max(held, 1 if len(names) > 1 and fraction > 0 else 0), len(names) - 1)
    return sorted(order[held:].tolist()), sorted(order[:held].tolist())
