"""Read recordings in blocks as mono float32, whatever the file holds.

Recordings are never decoded whole on the way to a model: ``read_blocks`` yields a few
hundred milliseconds at a time (soundfile block reads), so memory does not grow with a
file's length. Every block is checked: a NaN, an infinity or an absurd value (beyond
``ABSURD_AMPLITUDE``, in float files) makes the file unusable, with the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bat_core.errors import AudioError

# Full scale is 1.0. Float WAVs may overshoot a little after processing; a sample beyond
# +-1000 (60 dB over full scale) is not audio but a corrupt or mislabelled file.
ABSURD_AMPLITUDE = 1e3
BLOCK_FRAMES = 1 << 16  # samples per read: 0.17-0.34 s at 192-384 kHz


@dataclass(frozen=True)
class AudioInfo:
    """What the header says: enough to plan a run without decoding the file."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class Recording:
    """A decoded recording: mono samples at the file's own rate."""

    samples: np.ndarray  # float32, shape (n,)
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """The header of a recording; AudioError if it is missing, empty or not audio."""
    path = _existing(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as soundfile_error:
        recording = _load_with_librosa(path, soundfile_error)
        return AudioInfo(recording.sample_rate, recording.channels, len(recording.samples))
    if info.samplerate < 1:
        raise AudioError(f"the header of {path} gives a sample rate of {info.samplerate} Hz: the file is corrupt")
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def read_blocks(path: str | Path, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Mono float32 blocks of at most ``block_frames`` samples (channels mixed by their mean).

    Formats soundfile cannot read go through librosa (audioread) when it is installed; those
    are decoded whole, then cut into blocks.
    """
    path = _existing(path)
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as soundfile_error:
        recording = _load_with_librosa(path, soundfile_error)
        for start in range(0, len(recording.samples), block_frames):
            yield _checked(recording.samples[start:start + block_frames], path)
        return
    with handle:
        total = 0
        try:
            if handle.subtype == "PCM_16" and handle.channels == 1:
                # libsndfile's own int16 -> float32 costs ~4x numpy's; the same exact values (i / 32768), and
                # 16-bit samples are always finite and within full scale, so they need no check
                scale = np.float32(1 / 32768)
                for frames in handle.blocks(blocksize=block_frames, dtype="int16", always_2d=False):
                    total += len(frames)
                    yield np.multiply(frames, scale, dtype=np.float32)
                if total == 0:
                    raise AudioError(f"no audio samples in {path}")
                return
            for frames in handle.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                total += len(frames)
                yield _checked(frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1, dtype=np.float32), path)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(f"cannot decode {path} after {total} samples: {error}") from error
        if total == 0:
            raise AudioError(f"no audio samples in {path}")


def read_span(path: str | Path, start: int, stop: int, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Samples ``start:stop`` of a recording as mono float32 blocks (a seek, not a decode from the start).

    Per-call encoding reads a few milliseconds around each call this way. Formats soundfile cannot
    read are decoded from the start (librosa), which is slower but gives the same samples."""
    path = _existing(path)
    if not 0 <= start <= stop:
        raise ValueError(f"a span of samples must have 0 <= start <= stop, got {start}:{stop}")
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        position = 0
        for block in read_blocks(path, block_frames):
            begin, end = max(start, position), min(stop, position + len(block))
            if begin < end:
                yield block[begin - position:end - position]
            position += len(block)
            if position >= stop:
                return
        return
    with handle:
        try:
            handle.seek(start)
            for frames in handle.blocks(blocksize=block_frames, frames=stop - start, dtype="float32", always_2d=True):
                yield _checked(frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1, dtype=np.float32), path)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(f"cannot decode samples {start}:{stop} of {path}: {error}") from error


def load_audio(path: str | Path) -> Recording:
    """The whole recording in memory: for short files and notebooks; runs stream with ``read_blocks``."""
    info = audio_info(path)
    samples = np.concatenate(list(read_blocks(path)))
    return Recording(np.ascontiguousarray(samples, dtype=np.float32), info.sample_rate, info.channels)


def check_samples(samples: np.ndarray, where: str | Path) -> np.ndarray:
    """``samples`` if every value is finite and within ``ABSURD_AMPLITUDE``; AudioError otherwise."""
    return _checked(np.asarray(samples, dtype=np.float32), where)


def _checked(block: np.ndarray, path: str | Path) -> np.ndarray:
    peak = float(np.max(np.abs(block))) if block.size else 0.0
    if not np.isfinite(peak):
        bad = int(np.count_nonzero(~np.isfinite(block)))
        raise AudioError(f"{bad} NaN/inf sample(s) in {path}; the file is corrupt or not PCM audio")
    if peak > ABSURD_AMPLITUDE:
        raise AudioError(f"sample value {peak:g} in {path} is beyond +-{ABSURD_AMPLITUDE:g} (full scale is 1): "
                         "the file is corrupt or not audio")
    return np.ascontiguousarray(block, dtype=np.float32)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not a recording")
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"empty file (0 bytes): {path}")
    return path


def _load_with_librosa(path: Path, soundfile_error: Exception) -> Recording:
    try:
        import librosa  # slow import, only for formats soundfile cannot read
    except ImportError:
        raise AudioError(f"cannot decode {path}: {soundfile_error} (install librosa for formats soundfile cannot "
                         "read: pip install 'bat-core[mels]')") from soundfile_error
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns about its audioread fallback
            samples, sample_rate = librosa.load(str(path), sr=None, mono=False)
    except Exception as error:  # librosa raises many types for undecodable input
        raise AudioError(
            f"cannot decode {path}: soundfile said {soundfile_error}; librosa said {str(error) or type(error).__name__}"
        ) from error
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise AudioError(f"no audio samples in {path}")
    channels = 1 if samples.ndim == 1 else samples.shape[0]
    mono = samples if samples.ndim == 1 else samples.mean(axis=0, dtype=np.float32)
    return Recording(mono, int(sample_rate), channels)

