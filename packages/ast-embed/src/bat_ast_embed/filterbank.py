"""The checkpoint's own filterbank, computed in blocks of a streamed recording.

This is exactly what ``ASTFeatureExtractor`` computes when torchaudio is absent (its numpy
path): ``transformers.audio_utils.spectrogram`` with the extractor's mel filters and window,
25 ms frames (400 samples at 16 kHz) every 10 ms (160), a 512-point FFT, no centring,
pre-emphasis 0.97, the DC offset removed per frame, the natural log of the mel energies
floored at ``MEL_FLOOR``, then the extractor's normalisation ``(x - mean) / (2 * std)``.
Frames are independent and the normalisation uses the checkpoint's fixed statistics, not
the recording's, so a carry of 240 samples between blocks gives the whole-clip result.

Runs in worker processes: numpy and ``transformers.audio_utils`` only (not the extractor
class, whose module imports torch). The extractor's arrays and numbers are read once in the
main process (``FilterbankSpec.from_extractor``) and travel as plain data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

FRAME_SAMPLES = 400  # 25 ms at 16 kHz
HOP_SAMPLES = 160  # 10 ms
FFT_SAMPLES = 512
CARRY_SAMPLES = FRAME_SAMPLES - HOP_SAMPLES  # what the next block's first frame needs of this one
PREEMPHASIS = 0.97
MEL_FLOOR = 1.192092955078125e-07  # float32 epsilon, as the extractor


@dataclass(frozen=True, eq=False)
class FilterbankSpec:
    """A checkpoint's filterbank settings as plain data (picklable, no transformers objects)."""

    sample_rate: int
    mel_filters: np.ndarray  # (FFT_SAMPLES // 2 + 1, n_mels)
    window: np.ndarray  # (FRAME_SAMPLES,)
    mean: float
    std: float
    normalize: bool

    @classmethod
    def from_extractor(cls, extractor: Any) -> FilterbankSpec:
        """Read an ``ASTFeatureExtractor``'s filters and statistics (main process). With torchaudio
        installed the extractor keeps no numpy filters; they are then built as its numpy path builds them."""
        sample_rate = int(extractor.sampling_rate)
        mel_filters = getattr(extractor, "mel_filters", None)
        if mel_filters is None:
            mel_filters = mel_filter_bank(
                num_frequency_bins=FFT_SAMPLES // 2 + 1, num_mel_filters=int(extractor.num_mel_bins), min_frequency=20,
                max_frequency=sample_rate // 2, sampling_rate=sample_rate, norm=None, mel_scale="kaldi",
                triangularize_in_mel_space=True,
            )
        window = getattr(extractor, "window", None)
        if window is None:
            window = window_function(FRAME_SAMPLES, "hann", periodic=False)
        return cls(sample_rate, np.array(mel_filters), np.array(window), float(extractor.mean), float(extractor.std),
                   bool(extractor.do_normalize))

    @property
    def n_mels(self) -> int:
        return int(self.mel_filters.shape[1])

    @property
    def pad_value(self) -> float:
        """A padded frame's value: the extractor pads with zeros before normalising."""
        return (0.0 - self.mean) / (self.std * 2) if self.normalize else 0.0

    def describe(self) -> dict:
        """What decides the model's input, for the configuration hash."""
        digest = hashlib.sha256(np.ascontiguousarray(self.mel_filters, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(self.window, dtype=np.float64).tobytes())
        return {"sample_rate": self.sample_rate, "n_mels": self.n_mels, "mean": self.mean, "std": self.std,
                "normalize": self.normalize, "filters": digest.hexdigest()[:16]}

    def frames(self, samples: np.ndarray) -> np.ndarray:
        """(t, n_mels) float32 normalised log-mel frames of ``samples`` (at least one frame long)."""
        fbank = spectrogram(
            np.asarray(samples, dtype=np.float32), self.window, frame_length=FRAME_SAMPLES, hop_length=HOP_SAMPLES,
            fft_length=FFT_SAMPLES, power=2.0, center=False, preemphasis=PREEMPHASIS, mel_filters=self.mel_filters,
            log_mel="log", mel_floor=MEL_FLOOR, remove_dc_offset=True,
        ).T
        if self.normalize:
            fbank = (fbank - self.mean) / (self.std * 2)
        return np.ascontiguousarray(fbank, dtype=np.float32)


class FilterbankStream:
    """``push`` converted sample blocks, get the frames they complete; ``finish`` ends the stream.

    Holds at most one block plus the ``CARRY_SAMPLES`` the next frame shares with it. A stream
    shorter than one frame is zero-padded to one frame (as the whole-clip path always did);
    otherwise the last samples that do not fill a frame are dropped, as the extractor drops them.
    """

    def __init__(self, spec: FilterbankSpec):
        self.spec = spec
        self._carry = np.zeros(0, dtype=np.float32)
        self.samples = 0
        self.frames_out = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        self.samples += len(block)
        buffer = np.concatenate([self._carry, block]) if len(self._carry) else block
        if len(buffer) < FRAME_SAMPLES:
            self._carry = buffer.copy()
            return np.zeros((0, self.spec.n_mels), dtype=np.float32)
        count = 1 + (len(buffer) - FRAME_SAMPLES) // HOP_SAMPLES
        frames = self.spec.frames(buffer[: (count - 1) * HOP_SAMPLES + FRAME_SAMPLES])
        self._carry = buffer[count * HOP_SAMPLES:].copy()
        self.frames_out += count
        return frames

    def finish(self) -> np.ndarray:
        if self.frames_out:
            return np.zeros((0, self.spec.n_mels), dtype=np.float32)
        padded = np.pad(self._carry, (0, FRAME_SAMPLES - len(self._carry)))
        self._carry = np.zeros(0, dtype=np.float32)
        self.frames_out = 1
        return self.spec.frames(padded)

    def frames_of(self, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """The frame blocks of a whole stream of sample blocks (empty blocks left out)."""
        for block in blocks:
            frames = self.push(block)
            if len(frames):
                yield frames
        last = self.finish()
        if len(last):
            yield last


def filterbank(samples: np.ndarray, spec: FilterbankSpec) -> np.ndarray:
    """(t, n_mels) frames of a clip held in memory: the same as streaming it."""
    blocks = list(FilterbankStream(spec).frames_of(iter([np.asarray(samples, dtype=np.float32)])))
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
