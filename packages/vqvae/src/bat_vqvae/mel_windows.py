"""Recording -> normalised mel windows for the runner: what encoding and the hold-out pass feed the model.

Runs in the runner's worker processes: numpy only (bat-core's ``MelFrames``, its ``Windower``
and the model's ``MelNormalizer``), no torch. The frame stream of a recording is cut into
windows of ``ENCODE_CHUNK_FRAMES`` overlapping by ``CHUNK_OVERLAP_FRAMES``; each window owns
half of each overlap, so its codes, kept where their centres fall in its share, join into the
codes of the whole file (the overlap is at least the model's receptive field).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bat_core.mels import MelConfig, MelFrames
from bat_core.runner import AudioPrepare, Piece
from bat_core.windows import Window, Windower
from bat_vqvae.normalizer import MelNormalizer

ENCODE_CHUNK_FRAMES = 4096  # mel frames per model window (22 s of 48 kHz audio at hop 256)
CHUNK_OVERLAP_FRAMES = 64


def window_frames(stride: int, receptive_field: int) -> tuple[int, int]:
    """``(window, hop)`` in mel frames: both multiples of the model's stride (so every window's codes sit on
    the file's code grid), the overlap at least the receptive field. Read at call time (tests shrink them)."""
    overlap = _round_up(max(CHUNK_OVERLAP_FRAMES, receptive_field), stride)
    window = _round_up(max(ENCODE_CHUNK_FRAMES, 2 * overlap), stride)
    return window, window - overlap


def _round_up(value: int, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


@dataclass(frozen=True)
class MelWindows:
    """Piece maker: a converted sample stream -> normalised mel windows ``(n_mels, w)``, ``meta`` their Span."""

    frames: MelFrames
    normalizer: MelNormalizer
    window: int
    hop: int

    @property
    def piece_bytes(self) -> int:
        return self.window * self.frames.config.n_mels * 4

    def __call__(self, blocks: Iterator[np.ndarray]) -> Iterator[Piece]:
        windower = Windower(self.window, self.hop)
        for block in self.frames(blocks):
            for window in windower.push(block.data):
                yield self._piece(window)
        for window in windower.finish():
            yield self._piece(window)

    def _piece(self, window: Window) -> Piece:
        # length = window length: equal windows share a batch, a file's shorter last one waits for its like
        return Piece(self.normalizer.normalise_frames(window.data), length=len(window.data), meta=window.span)


def window_prepare(mel_config: MelConfig, normalizer: MelNormalizer, stride: int, receptive_field: int) -> AudioPrepare:
    """Runner prepare: recording (streamed) -> time expansion, resampling -> mel frames -> model windows."""
    window, hop = window_frames(stride, receptive_field)
    pieces = MelWindows(MelFrames.for_config(mel_config), normalizer, window, hop)
    return AudioPrepare(pieces, mel_config.sample_rate, mel_config.time_expansion)
