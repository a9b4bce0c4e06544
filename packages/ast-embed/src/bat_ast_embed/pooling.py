"""Window outputs -> one recording's embedding: a duration-weighted average, the sequence joined.

Used by both paths, so they give the same numbers: ``EmbeddingAssembler`` writes through
the store as windows arrive (the patch sequence appended, so a long recording's sequence
is never held whole), and ``ASTEmbedder.embed`` collects in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from bat_core.runner import FileInfo, Piece


class WindowOutput(NamedTuple):
    """What the encoder gives per window (float32 numpy)."""

    pooler: np.ndarray  # (hidden,) the model's pooler output ((CLS + distillation) / 2)
    mean: np.ndarray  # (hidden,) mean of the window's valid patch tokens
    sequence: np.ndarray  # (valid time patches, hidden): patch tokens averaged over frequency; (0, hidden) when not kept


@dataclass
class Embedding:
    pooled: np.ndarray  # (hidden,) as chosen by --pool (pooler output unless pool="mean")
    mean: np.ndarray  # (hidden,) mean of valid patch tokens
    pooler: np.ndarray  # (hidden,) the model's pooler output ((CLS + distillation) / 2)
    sequence: np.ndarray  # (time patches, hidden): patch tokens averaged over frequency
    windows: int
    run_frames: list[int]


class WindowPooling:
    """Running sums of window outputs weighted by their valid frames (a long window counts more)."""

    def __init__(self):
        self.pooler_sum: np.ndarray | None = None
        self.mean_sum: np.ndarray | None = None
        self.frames = 0
        self.run_frames: list[int] = []

    def add(self, piece: Piece, output: WindowOutput) -> None:
        valid = int(piece.meta)
        pooler, mean = output.pooler.astype(np.float64) * valid, output.mean.astype(np.float64) * valid
        self.pooler_sum = pooler if self.pooler_sum is None else self.pooler_sum + pooler
        self.mean_sum = mean if self.mean_sum is None else self.mean_sum + mean
        self.frames += valid
        self.run_frames.append(int(piece.length))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(pooler, mean), float32."""
        if self.pooler_sum is None:
            raise ValueError("no window was embedded")
        return (self.pooler_sum / self.frames).astype(np.float32), (self.mean_sum / self.frames).astype(np.float32)


def chosen(pool: str, pooler: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The main output for ``--pool``: the mean of patch tokens for ``mean``, the pooler output otherwise."""
    return mean if pool == "mean" else pooler


class EmbeddingAssembler:
    """Runner assembler: one file's windows -> ``ast_<stem>.npy`` (+ ``.mean.npy``, ``.sequence.npy``)."""

    def __init__(self, output: Any, pool: str, layer: int, sequence: bool,
                 sequence_frames_per_second: Callable[[FileInfo], float]):
        self.output, self.pool, self.layer, self.sequence = output, pool, layer, sequence
        self.sequence_frames_per_second = sequence_frames_per_second
        self.pooling = WindowPooling()

    def add(self, piece: Piece, output: WindowOutput) -> None:
        self.pooling.add(piece, output)
        if self.sequence:
            self.output.append(output.sequence, "sequence")

    def finish(self, info: FileInfo) -> dict:
        pooler, mean = self.pooling.result()
        if self.pool == "both":
            self.output.put(mean, "mean")
        self.output.put(chosen(self.pool, pooler, mean))
        return {"frames_per_second": None, "extra": {
            "pool": "pooler" if self.pool == "both" else self.pool, "layer": self.layer,
            "windows": len(self.pooling.run_frames), "run_frames": self.pooling.run_frames,
            "sequence_frames_per_second": self.sequence_frames_per_second(info),
        }}
