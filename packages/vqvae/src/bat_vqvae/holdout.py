"""The held-back files' scores, through the runner: encode and decode one window at a time.

Each window is scored on the frames and codes it owns (see ``mel_windows``), so the sums
are those of the whole file without a whole file ever in memory (a 10-minute recording
took 15.8 GB when it was decoded whole).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from bat_core.dataset import DatasetItem
from bat_core.metrics import perplexity, usage
from bat_core.runner import FileInfo, Piece, RunOptions, run
from bat_vqvae.artefact import VQVAETokenizer
from bat_vqvae.config import VQVAEConfig
from bat_vqvae.encoder import batch_limits, deferred, stacked
from bat_vqvae.mel_windows import window_prepare
from bat_vqvae.model import codebook_entries


@dataclass
class WindowScore:
    codes: np.ndarray  # the codes this window owns
    squared_error: float  # summed over the frames it owns, in normalised units
    values: int  # how many values that sum covers


@dataclass
class HoldoutScores:
    usage: float | None  # share of the codebook used on the held-back files
    perplexity: float | None
    mse: float | None  # reconstruction MSE, normalised units
    files: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


class ScoreEncoder:
    """Runner encoder: windows -> codes -> reconstruction -> each window's owned codes and squared error."""

    def __init__(self, tokenizer: VQVAETokenizer):
        self.tokenizer = tokenizer
        self.max_items, self.max_length = batch_limits(tokenizer)

    def __call__(self, batch: list[Piece]) -> list[Any] | Callable[[], list[Any]]:
        model, device, stride = self.tokenizer.model, self.tokenizer.device, self.tokenizer.config.stride
        windows = stacked(batch, device)
        codes = model.encode(windows)
        reconstruction = model.decode(codes, windows.shape[1], windows.shape[2])
        per_frame = (reconstruction.float() - windows).pow(2).sum(dim=1)  # (B, w)
        owned_frames = [piece.meta.owned(windows.shape[2], 1) for piece in batch]
        owned_codes = [piece.meta.owned(codes.shape[1], stride) for piece in batch]
        errors = torch.stack([per_frame[row, frames].sum() for row, frames in enumerate(owned_frames)]).double()
        tensors = [errors, *(codes[row, part] for row, part in enumerate(owned_codes))]
        values = [(frames.stop - frames.start) * windows.shape[1] for frames in owned_frames]
        arrays = deferred(tensors, device)

        def scores(arrays: list[np.ndarray]) -> list[WindowScore]:
            return [WindowScore(arrays[1 + row], float(arrays[0][row]), values[row]) for row in range(len(batch))]

        if callable(arrays):
            return lambda: scores(arrays())
        return scores(arrays)


class _Totals:
    """Runner sink: a file's window scores count only once the whole file went through."""

    def __init__(self, config: VQVAEConfig):
        self.config = config
        self.counts = np.zeros(config.codebook_entries, dtype=np.int64)
        self.squared_error, self.values = 0.0, 0
        self.pending: dict[str, tuple[np.ndarray, float, int]] = {}
        self.files: list[str] = []
        self.failures: dict[str, str] = {}

    def add(self, item: DatasetItem, piece: Piece, output: WindowScore) -> None:
        counts, error, values = self.pending.get(item.file_name, (np.zeros_like(self.counts), 0.0, 0))
        counts += np.bincount(codebook_entries(output.codes, self.config).ravel(), minlength=len(counts))
        self.pending[item.file_name] = (counts, error + output.squared_error, values + output.values)

    def done(self, item: DatasetItem, info: FileInfo) -> None:
        counts, error, values = self.pending.pop(item.file_name, (np.zeros_like(self.counts), 0.0, 0))
        self.counts += counts
        self.squared_error += error
        self.values += values
        self.files.append(item.file_name)

    def fail(self, item: DatasetItem, reason: str) -> None:
        self.pending.pop(item.file_name, None)
        self.failures[item.file_name] = reason


def score_holdout(tokenizer: VQVAETokenizer, items: Sequence[DatasetItem],
                  options: RunOptions = RunOptions()) -> HoldoutScores:
    """Codebook usage, perplexity and reconstruction MSE over ``items``, each streamed from its recording."""
    if not items:
        return HoldoutScores(None, None, None)
    config = tokenizer.config
    totals = _Totals(config)
    prepare = window_prepare(tokenizer.mel_config, tokenizer.normalizer, config.stride, config.receptive_field)
    run(list(items), prepare, totals, ScoreEncoder(tokenizer),
        replace(options, description=options.description or "hold-out"))
    if not totals.files:
        return HoldoutScores(None, None, None, [], totals.failures)
    return HoldoutScores(usage(totals.counts), perplexity(totals.counts), totals.squared_error / max(totals.values, 1),
                         totals.files, totals.failures)
