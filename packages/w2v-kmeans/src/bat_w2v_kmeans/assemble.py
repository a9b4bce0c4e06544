"""One file's tokens put back together in the store: windows stitched to one token per frame, and the
run-length form (``--dedup``) made as the tokens come."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bat_core.errors import NonFiniteError
from bat_core.runner import AppendOutputs, FileInfo, Piece


def run_lengths(tokens: np.ndarray) -> np.ndarray:
    """(n_runs, 2) int32: each run's token and its length in frames (``--dedup``)."""
    tokens = np.asarray(tokens)
    if len(tokens) == 0:
        return np.zeros((0, 2), dtype=np.int32)
    starts = np.flatnonzero(np.r_[True, tokens[1:] != tokens[:-1]])
    lengths = np.diff(np.r_[starts, len(tokens)])
    return np.stack([tokens[starts], lengths], axis=1).astype(np.int32)


class RunLengths:
    """Run-length rows of a token stream that arrives in blocks."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []

    def add(self, tokens: np.ndarray) -> None:
        runs = run_lengths(tokens)
        if not len(runs):
            return
        if self.blocks and self.blocks[-1][-1, 0] == runs[0, 0]:
            self.blocks[-1] = self.blocks[-1].copy()
            self.blocks[-1][-1, 1] += runs[0, 1]
            runs = runs[1:]
        if len(runs):
            self.blocks.append(runs)

    def rows(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, 2), dtype=np.int32)


class _Tap:
    """Stands in for the file's output: sees the stitched tokens on their way to it."""

    def __init__(self, output, runs: RunLengths | None):
        self.output, self.runs = output, runs

    def append(self, tokens: np.ndarray, name: str = "", fortran: bool = False) -> None:
        if len(tokens) and tokens.min() < 0:
            raise NonFiniteError(f"the encoder gave {int((tokens < 0).sum())} frame(s) with NaN/inf values: no tokens "
                                 "written")
        if self.runs is not None:
            self.runs.add(tokens)
        self.output.append(tokens, name, fortran=fortran)


class TokenAssembler:
    """``AppendOutputs`` with ``stride = samples_per_frame`` (overlapping windows give one token per frame),
    plus ``<name>.runs.npy`` when ``dedup``."""

    def __init__(self, output, frames_per_second: Callable[[FileInfo], float], samples_per_frame: int | None,
                 dedup: bool, extra: dict):
        self.output = output
        self.runs = RunLengths() if dedup else None
        self.append = AppendOutputs(_Tap(output, self.runs), frames_per_second, stride=samples_per_frame, extra=extra)

    def add(self, piece: Piece, tokens: np.ndarray) -> None:
        self.append.add(piece, tokens)

    def finish(self, info: FileInfo) -> dict:
        if self.runs is not None:
            self.output.put(self.runs.rows(), "runs")
        return self.append.finish(info)
