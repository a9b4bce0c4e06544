"""Worker side of an AST run: a converted recording -> filterbank frames -> the model's windows.

Imports no torch and no transformers model code (the runner's worker processes unpickle
``ASTPieces``). Windows: a recording no longer than the length in force is one window; a
longer one gets windows every ``hop`` frames until one reaches its end (the last may be
shorter). ``hop`` is a whole number of time patches, so consecutive windows start on the
patch grid and their patch sequences join without gap. Each window is one ``Piece``:
``data`` its valid frames, ``length`` the length it runs at (the trained length, its
bucket in auto mode, or the chosen integer), ``meta`` its count of valid frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bat_ast_embed.filterbank import FilterbankSpec, FilterbankStream
from bat_core.batching import bucket_length
from bat_core.runner import AudioPrepare, Piece
from bat_core.time_expansion import TimeExpansion
from bat_core.windows import Windower


def time_patches(frames: int, patch_size: int = 16, time_stride: int = 10) -> int:
    """Time patches an AST makes of ``frames`` input frames (at least one)."""
    return max(1, (frames - patch_size) // time_stride + 1)


@dataclass(frozen=True)
class WindowPlan:
    """How a stream of filterbank frames is cut into model windows, and the length each runs at."""

    limit: int  # longest window, in frames
    patch_size: int = 16
    time_stride: int = 10
    bucket: int | None = None  # auto mode: run lengths rounded up to a multiple of this; None: every window at ``limit``

    @property
    def hop(self) -> int:
        """Frames between window starts: the window's whole time patches."""
        return time_patches(self.limit, self.patch_size, self.time_stride) * self.time_stride

    def run_length(self, valid: int) -> int:
        if self.bucket is None:
            return self.limit
        return bucket_length(valid, self.bucket, self.patch_size, self.limit)

    def pieces(self, frame_blocks: Iterator[np.ndarray]) -> Iterator[Piece]:
        """Windows of a stream of frame blocks, as pieces (held: one window plus one block)."""
        windower = Windower(self.limit, self.hop)
        for block in frame_blocks:
            for window in windower.push(block):
                yield self._piece(window.data)
        for window in windower.finish():
            yield self._piece(window.data)

    def _piece(self, frames: np.ndarray) -> Piece:
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        return Piece(frames, length=self.run_length(len(frames)), meta=len(frames))


@dataclass(frozen=True)
class ASTPieces:
    """Runner piece maker: converted samples -> the checkpoint's filterbank -> model windows."""

    filterbank: FilterbankSpec
    plan: WindowPlan

    @property
    def piece_bytes(self) -> int:
        return self.plan.limit * self.filterbank.n_mels * 4

    def __call__(self, blocks: Iterator[np.ndarray]) -> Iterator[Piece]:
        return self.plan.pieces(FilterbankStream(self.filterbank).frames_of(blocks))


def ast_prepare(pieces: ASTPieces, expansion: TimeExpansion) -> AudioPrepare:
    """Recording -> time expansion and resampling to the checkpoint's rate -> pieces, all streamed."""
    return AudioPrepare(pieces, pieces.filterbank.sample_rate, expansion)
