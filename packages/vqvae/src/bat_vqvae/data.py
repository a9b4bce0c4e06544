"""Mel spectrograms for training: normalisation statistics, random fixed-length crops, padding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MelNormalizer:
    """Per-frequency mean and standard deviation, computed once over the training files."""

    mean: np.ndarray  # (n_mels,)
    std: np.ndarray  # (n_mels,)

    @classmethod
    def fit(cls, mels: Sequence[np.ndarray]) -> MelNormalizer:
        frames = sum(m.shape[1] for m in mels)
        total = sum(m.sum(axis=1, dtype=np.float64) for m in mels)
        mean = total / frames
        squares = sum(((m - mean[:, None]) ** 2).sum(axis=1, dtype=np.float64) for m in mels)
        std = np.sqrt(squares / frames)
        return cls(mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32))

    def normalise(self, mel: np.ndarray) -> np.ndarray:
        return ((mel - self.mean[:, None]) / self.std[:, None]).astype(np.float32)

    def denormalise(self, mel: np.ndarray) -> np.ndarray:
        return (mel * self.std[:, None] + self.mean[:, None]).astype(np.float32)


def pad_batch(mels: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length (n_mels, T_i) arrays -> zero-padded (B, n_mels, T_max) and a frame mask (B, T_max)."""
    longest = max(m.shape[1] for m in mels)
    batch = torch.zeros(len(mels), mels[0].shape[0], longest)
    mask = torch.zeros(len(mels), longest, dtype=torch.bool)
    for row, mel in enumerate(mels):
        batch[row, :, : mel.shape[1]] = torch.from_numpy(mel)
        mask[row, : mel.shape[1]] = True
    return batch, mask


def random_crops(mels: Sequence[np.ndarray], batch_size: int, crop_frames: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` crops of ``crop_frames`` from files drawn at random (short files padded, masked)."""
    crops = []
    for index in rng.integers(len(mels), size=batch_size):
        mel = mels[index]
        start = int(rng.integers(mel.shape[1] - crop_frames + 1)) if mel.shape[1] > crop_frames else 0
        crops.append(mel[:, start:start + crop_frames])
    batch, mask = pad_batch(crops)
    if batch.shape[-1] < crop_frames:  # every file shorter than a crop
        extra = crop_frames - batch.shape[-1]
        batch = torch.nn.functional.pad(batch, (0, extra))
        mask = torch.nn.functional.pad(mask, (0, extra))
    return batch, mask


def split_holdout(names: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of training and held-back files; at least one of each when there are two files."""
    order = np.random.default_rng(seed).permutation(len(names))
    held = int(round(fraction * len(names)))
    held = min(max(held, 1 if len(names) > 1 and fraction > 0 else 0), len(names) - 1)
    return sorted(order[held:].tolist()), sorted(order[:held].tolist())
