"""The corpus as training crops: every recording through bat-core's runner (decoding workers, time
expansion, resampling to 16 kHz) exactly as bat-w2v-kmeans reads it, into a capped reservoir."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from bat_core.calls import CallPrepare, CallSelection
from bat_core.dataset import DatasetItem
from bat_core.kmeans import HashedSample
from bat_core.runner import AudioPrepare, FileInfo, Piece, RunOptions, run
from bat_core.time_expansion import TimeExpansion
from bat_hubert.crops import CropPieces
from bat_hubert.defaults import FRAME_SAMPLES, MODEL_RATE

log = logging.getLogger(__name__)


@dataclass
class Crops:
    """Training crops: audio (n, crop) float32, valid samples per crop, the recording each came from."""

    audio: np.ndarray
    valid: np.ndarray  # int64 (n,)
    file_index: np.ndarray  # int64 (n,): position in the items the crops were made from
    failures: dict[str, str]
    model_seconds: float  # model audio offered (before the reservoir's cap)
    factors: dict[int, float]  # original sample rate -> the time expansion its recordings got

    def __len__(self) -> int:
        return len(self.audio)

    def subset(self, rows: np.ndarray) -> Crops:
        return replace(self, audio=self.audio[rows], valid=self.valid[rows], file_index=self.file_index[rows])


class _CropSink:
    """Offers each crop to the reservoir as one row: samples, then valid length and file index."""

    def __init__(self, items: Sequence[DatasetItem], sample: HashedSample):
        self.index = {item.file_name: position for position, item in enumerate(items)}
        self.sample = sample
        self.pending: dict[str, list[np.ndarray]] = {}
        self.failures: dict[str, str] = {}
        self.samples_seen = 0
        self.factors: dict[int, float] = {}

    def add(self, item: DatasetItem, piece: Piece, output: np.ndarray) -> None:
        row = np.concatenate([output, [piece.meta, self.index[item.file_name]]]).astype(np.float32)
        self.pending.setdefault(item.file_name, []).append(row)
        self.samples_seen += int(piece.meta)

    def done(self, item: DatasetItem, info: FileInfo) -> None:  # a file's crops join only when it is whole
        rows = self.pending.pop(item.file_name, [])
        if info.conversion is not None:
            self.factors[info.conversion.original_sample_rate] = info.conversion.time_expansion
        if rows:
            self.sample.add(item.file_name, 0, np.stack(rows))

    def fail(self, item: DatasetItem, reason: str) -> None:
        self.pending.pop(item.file_name, None)
        self.failures[item.file_name] = reason
        log.warning("%s: %s", item.file_name, reason)


def collect_crops(items: Sequence[DatasetItem], expansion: TimeExpansion, crop_seconds: float, max_crops: int,
                  seed: int, options: RunOptions = RunOptions(), calls: CallSelection | None = None) -> Crops:
    """At most ``max_crops`` crops of the corpus (a seeded, order-free choice when there are more). With
    ``calls``, crops of the calls only: each call plus its context, widened with the recording's own audio to
    at least one crop (``bat_core.calls``); a recording shorter than a crop (a clip of one call) is taken whole
    and padded, as in whole-recording mode."""
    crop = int(round(crop_seconds * MODEL_RATE))
    sample = HashedSample(max_crops, crop + 2, seed=seed, dtype=np.float32)
    sink = _CropSink(items, sample)
    prepare = AudioPrepare(CropPieces(crop, FRAME_SAMPLES), MODEL_RATE, expansion)
    if calls is not None:
        prepare = CallPrepare(prepare, calls, min_samples=FRAME_SAMPLES, widen_samples=crop)
    run(items, prepare, sink, None, replace(options, description=options.description or "pretrain: crops"))
    rows = sample.sample()
    return Crops(audio=np.ascontiguousarray(rows[:, :crop]), valid=rows[:, crop].astype(np.int64),
                 file_index=rows[:, crop + 1].astype(np.int64), failures=sink.failures,
                 model_seconds=sink.samples_seen / MODEL_RATE, factors=dict(sorted(sink.factors.items())))
