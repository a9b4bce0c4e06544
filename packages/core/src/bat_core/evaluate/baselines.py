"""Floors and references computed the same way as the strategies: every number needs a baseline.

- majority: always predict the most common training label;
- mfcc_kmeans: MFCCs of the (time-expanded) log-mels, k-means tokens, bag of tokens;
- mean_log_mel: the time-average of each file's log-mel spectrogram.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct
from sklearn.cluster import KMeans

MFCC_COEFFICIENTS = 20
MFCC_CODES = 64
MFCC_FIT_FRAMES = 20_000


def mfcc(mel_db: np.ndarray, n_coefficients: int = MFCC_COEFFICIENTS) -> np.ndarray:
    """(T, n) MFCC frames from a log-mel (n_mels, T) in dB (type-II orthonormal DCT, as librosa)."""
    return dct(mel_db, type=2, axis=0, norm="ortho")[:n_coefficients].T.astype(np.float32)


def mfcc_kmeans_tokens(mels: dict[str, np.ndarray], seed: int = 0, codes: int = MFCC_CODES) -> dict[str, np.ndarray]:
    frames = {name: mfcc(mel) for name, mel in mels.items()}
    stacked = np.concatenate(list(frames.values()))
    rng = np.random.default_rng(seed)
    sample = stacked[rng.choice(len(stacked), min(len(stacked), MFCC_FIT_FRAMES), replace=False)]
    kmeans = KMeans(min(codes, len(sample)), n_init=1, random_state=seed).fit(sample)
    return {name: kmeans.predict(f).astype(np.int16) for name, f in frames.items()}


def mean_log_mel(mels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: mel.mean(axis=1) for name, mel in mels.items()}
