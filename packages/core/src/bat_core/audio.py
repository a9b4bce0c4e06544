"""Read recordings as mono float32, whatever the file holds; resample with soxr."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from bat_core.errors import AudioError


@dataclass(frozen=True)
class Recording:
    """A decoded recording: mono samples at the file's own rate."""

    samples: np.ndarray  # float32, shape (n,)
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def load_audio(path: str | Path) -> Recording:
    """Decode WAV/FLAC with soundfile (any rate), other formats through librosa.

    Multichannel files are mixed to mono. Raises AudioError for a missing, empty,
    undecodable or non-finite file, with the reason in the message.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"empty file (0 bytes): {path}")
    try:
        frames, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as soundfile_error:
        frames, sample_rate = _load_with_librosa(path, soundfile_error)
    if frames.shape[0] == 0:
        raise AudioError(f"no audio samples in {path}")
    channels = frames.shape[1]
    samples = frames[:, 0] if channels == 1 else frames.mean(axis=1, dtype=np.float32)
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(f"{bad} NaN/inf sample(s) in {path}; the file is corrupt or not PCM audio")
    return Recording(np.ascontiguousarray(samples, dtype=np.float32), int(sample_rate), channels)


def _load_with_librosa(path: Path, soundfile_error: Exception) -> tuple[np.ndarray, int]:
    import librosa  # slow import, only for formats soundfile cannot read

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns about its audioread fallback
            samples, sample_rate = librosa.load(str(path), sr=None, mono=False)
    except Exception as error:  # librosa raises many types for undecodable input
        raise AudioError(
            f"cannot decode {path}: soundfile said {soundfile_error}; librosa said {error}"
        ) from error
    samples = np.asarray(samples, dtype=np.float32)
    frames = samples[:, None] if samples.ndim == 1 else samples.T
    return frames, int(sample_rate)


def resample(samples: np.ndarray, from_rate: float, to_rate: float, quality: str = "HQ") -> np.ndarray:
    """Band-limited resampling (soxr); a no-op when the rates match."""
    if from_rate <= 0 or to_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(np.asarray(samples, dtype=np.float32), from_rate, to_rate, quality=quality)
