"""What runs in the decoding processes: numpy only, no torch, no transformers.

A recording reaches the encoder as windows of ``window`` samples (at the model's rate, after
time expansion) overlapping by ``window - hop``, each normalised on its own with the feature
extractor's normalisation (zero mean, unit variance when ``do_normalize``), padded to the
shortest input that gives a frame, and given a bucketed run length so that its batch padding
depends on nothing but itself.

Per-window statistics are a change from round 1, which normalised the whole recording at once:
a 10-minute recording expanded x15 is 150 minutes of model audio, and whole-file statistics
would need a second pass over it. Within a window the model sees exactly what the extractor
would give it for that window.

Cached frames (``run``'s one encoder pass) come back through ``CachedFrames``, which reads
them in blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bat_core.batching import bucket_length
from bat_core.dataset import DatasetItem
from bat_core.errors import AudioError
from bat_core.npy import StoredRows
from bat_core.runner import FileInfo, Piece
from bat_core.time_expansion import SignalConversion
from bat_core.windows import Span, Windower

NORMALISE_EPSILON = 1e-7  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm's


def normalised(samples: np.ndarray, do_normalize: bool) -> np.ndarray:
    """The feature extractor's input normalisation of one window (float64 statistics, float32 out)."""
    samples = np.asarray(samples, dtype=np.float32)
    if not do_normalize or len(samples) == 0:
        return samples
    mean = samples.mean(dtype=np.float64)
    variance = samples.var(dtype=np.float64)
    return ((samples - mean) / np.sqrt(variance + NORMALISE_EPSILON)).astype(np.float32)


@dataclass(frozen=True)
class WindowPieces:
    """Piece maker: the converted sample stream -> normalised windows (``piece.meta``: the window's Span).

    Plain data, pickled from the main process: every number comes from the encoder's checkpoint there."""

    window: int  # samples per window (a multiple of samples_per_frame, so windows start on frame boundaries)
    hop: int  # samples between window starts (a multiple of samples_per_frame)
    bucket: int  # run lengths are rounded up to a multiple of this
    min_length: int  # shortest input that gives one frame
    do_normalize: bool
    padding_value: float = 0.0

    @property
    def piece_bytes(self) -> int:
        return 4 * max(self.window, self.min_length)

    def __call__(self, blocks: Iterator[np.ndarray]) -> Iterator[Piece]:
        windower = Windower(self.window, self.hop)
        for block in blocks:
            for window in windower.push(block):
                yield self.piece(window.data, window.span)
        for window in windower.finish():
            yield self.piece(window.data, window.span)

    def piece(self, samples: np.ndarray, span: Span) -> Piece:
        data = normalised(samples, self.do_normalize)
        if len(data) < self.min_length:
            data = np.pad(data, (0, self.min_length - len(data)), constant_values=self.padding_value)
        length = bucket_length(len(data), self.bucket, self.min_length, max(self.window, self.min_length))
        return Piece(data, length=length, meta=span)


def owned_frames(span: Span, frame_count: int, samples_per_frame: int) -> tuple[slice, int]:
    """The frames of a window's output that belong to it, and the position of the first of them in the
    recording's stitched frame sequence (windows start on frame boundaries)."""
    owned = span.owned(frame_count, samples_per_frame)
    return owned, span.start // samples_per_frame + owned.start


@dataclass(frozen=True)
class CachedFile:
    """Where one recording's cached frames are and what they were made from."""

    path: str
    source_fingerprint: str
    seconds: float
    conversion: dict  # SignalConversion.as_record()


@dataclass(frozen=True)
class CachedFrames:
    """Runner prepare: a recording's cached frames, read in blocks of ``block_rows`` (``piece.meta``: the
    first row's position). A recording changed since its frames were cached, or one whose frames could not
    be made, fails with the reason; stale frames are never read."""

    files: dict[str, CachedFile]  # by file name
    failures: dict[str, str]  # file name -> why its frames could not be made
    dim: int
    block_rows: int = 2048  # 6 MB of 768-dimensional frames

    @property
    def piece_bytes(self) -> int:
        return 4 * self.block_rows * self.dim

    def __call__(self, item: DatasetItem) -> Iterator[Piece | FileInfo]:
        if item.file_name in self.failures:
            raise AudioError(self.failures[item.file_name])
        cached = self.files.get(item.file_name)
        if cached is None:
            raise AudioError(f"no cached frames for {item.file_name}")
        try:
            fingerprint = item.fingerprint()
        except OSError as error:
            raise AudioError(f"audio file not found: {item.path}") from error
        if fingerprint != cached.source_fingerprint:
            raise AudioError(f"{item.path} changed after its frames were cached; rerun to encode it again")
        try:  # read block by block (a memory map would keep every page it touched resident)
            frames = StoredRows.open(cached.path)
        except (OSError, ValueError) as error:
            raise AudioError(f"cached frames {cached.path} cannot be read: {error}") from error
        if frames.row_shape != (self.dim,) or frames.rows == 0:
            raise AudioError(f"cached frames {cached.path} have {frames.rows} rows of {frames.row_shape}, expected (T, {self.dim})")
        for start, block in frames.blocks(self.block_rows):
            yield Piece(block.astype(np.float32, copy=False), length=1, meta=start)
        yield FileInfo(seconds=cached.seconds, conversion=SignalConversion(**cached.conversion))
