"""``bat-core segment``: every file's calls, detected in the decoding workers, kept by the store.

The detection runs inside the picklable ``SegmentPrepare`` (worker processes), so the main
process only receives small call arrays. Each file's calls are stored as a ``(n_calls, 6)``
float64 array (``CALL_COLUMNS``) under ``derived/segments/<detector>-<hash>/<stem>.npy`` with a
manifest row (status, ``n_calls`` in its ``extra``, config hash) -- resumable, sharded, bad files
failed rows -- and the run ends by folding every ok file into one box table,
``derived/segments/<detector>-<hash>.parquet``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bat_core.dataset import Dataset, DatasetItem
from bat_core.runner import FileInfo, Piece, RunOptions, run_to_store
from bat_core.segments.detector import (
    BLOCK_SAMPLES,
    CALL_COLUMNS,
    DETECTOR_NAME,
    DETECTOR_VERSION,
    DetectorParams,
    StreamingDetector,
)

if TYPE_CHECKING:  # pandas and the store are the main process's
    from bat_core.paths import ProjectPaths
    from bat_core.store import RepresentationStore, RunSummary


def detector_config(params: DetectorParams) -> dict:
    """What the config hash covers: the detector, its version and its parameters."""
    return {"detector": DETECTOR_NAME, "version": DETECTOR_VERSION, "params": asdict(params)}


def configuration_name(params: DetectorParams) -> str:
    """``band_energy-<8 hex>``: each configuration's outputs live beside the others'."""
    from bat_core.provenance import config_hash

    return f"{DETECTOR_NAME}-{config_hash(detector_config(params))[:8]}"


def segments_path(paths: ProjectPaths, params: DetectorParams = DetectorParams()) -> Path:
    """The folded box table of one configuration."""
    return paths.derived / "segments" / f"{configuration_name(params)}.parquet"


@dataclass(frozen=True)
class SegmentPrepare:
    """Recording -> call arrays (a piece per block that settled calls, then the rest), at its own rate."""

    params: DetectorParams

    piece_bytes: int = 1 << 16  # pieces are small call arrays

    def __call__(self, item: DatasetItem) -> Iterator[Piece | FileInfo]:
        from bat_core.audio import audio_info, read_blocks
        from bat_core.time_expansion import SignalConverter

        info = audio_info(item.path)
        detector = StreamingDetector(info.sample_rate, self.params)
        converter = SignalConverter(info.sample_rate, None)  # passes the signal through; records that it did
        for block in converter.stream(read_blocks(item.path, block_frames=BLOCK_SAMPLES)):
            calls = detector.push(block)
            if len(calls):
                yield Piece(calls, length=len(calls))
        calls = detector.finish()
        yield Piece(calls, length=len(calls))
        geometry = detector.geometry
        yield FileInfo(seconds=detector.seconds, conversion=converter.conversion, extra={
            "channels": info.channels, "band_hz": [geometry.band_low_hz, geometry.band_high_hz],
            "band_cut": geometry.band_cut, "n_fft": geometry.n_fft, "hop": geometry.hop})


class CallsAssembler:
    """Gathers a file's call arrays (a few rows per block) and stores them as one array."""

    def __init__(self, output: Any):
        self.output = output
        self.parts: list[np.ndarray] = []

    def add(self, piece: Piece, output: np.ndarray) -> None:
        self.parts.append(np.asarray(output, dtype=np.float64).reshape(-1, len(CALL_COLUMNS)))

    def finish(self, info: FileInfo) -> dict:
        calls = np.concatenate(self.parts) if self.parts else np.zeros((0, len(CALL_COLUMNS)))
        self.output.put(calls)
        seconds_in_calls = float(np.sum(calls[:, 1] - calls[:, 0])) if len(calls) else 0.0
        return {"frames_per_second": None,
                "extra": {**info.extra, "n_calls": int(len(calls)), "seconds_in_calls": seconds_in_calls}}


def segment_store(dataset: Dataset, params: DetectorParams, shard: tuple[int, int] | None = None) -> RepresentationStore:
    from bat_core.store import RepresentationStore

    name = configuration_name(params)
    return RepresentationStore(dataset.paths, f"segments_{name}", dataset.paths.derived / "segments" / name,
                               detector_config(params), kind="segments", shard=shard)


@dataclass
class SegmentSummary:
    """The run's counts, plus what was found: calls and the share of the audio they cover."""

    run: RunSummary
    table_path: Path
    n_calls: int
    seconds: float  # audio of the files with an ok row
    seconds_in_calls: float

    @property
    def kept_share(self) -> float:
        return self.seconds_in_calls / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (f"{self.run.line()}; {self.n_calls} calls in {self.seconds:.1f} s of audio "
                f"({100 * self.kept_share:.2f}% kept) -> {self.table_path}")


def segment_project(dataset: Dataset, params: DetectorParams = DetectorParams(), *, overwrite: bool = False,
                    options: RunOptions = RunOptions(), shard: tuple[int, int] | None = None) -> SegmentSummary:
    """Detect calls in every dataset file (resumable; bad files become failed rows), then fold the box table."""
    from dataclasses import replace

    store = segment_store(dataset, params, shard)
    options = options if options.description else replace(options, description="segment")
    run = run_to_store(dataset, store, SegmentPrepare(params), lambda item, output: CallsAssembler(output),
                       options=options, overwrite=overwrite)
    table_path = segments_path(dataset.paths, params)
    return fold_segments(store, table_path, run)


def fold_segments(store: RepresentationStore, table_path: Path, run: RunSummary) -> SegmentSummary:
    """Every ok file's calls (this run's and earlier runs', other shards' too) into one box table."""
    from bat_core.locks import exclusive
    from bat_core.segments.table import segments_frame, write_segments

    with exclusive(store.paths.manifests_dir / f".{store.representation}.fold"):
        manifest = store.read_manifest()
        per_file: dict[str, np.ndarray] = {}
        seconds = seconds_in_calls = 0.0
        for row in manifest[manifest.status == "ok"].itertuples():
            output = Path(row.output_path)
            output = output if output.is_absolute() else store.paths.derived / output
            if not output.is_file():
                continue
            per_file[row.file_name] = np.load(output)
            seconds += float(row.seconds or 0.0)
            seconds_in_calls += float(json.loads(row.extra or "{}").get("seconds_in_calls", 0.0))
        table = segments_frame(per_file, DETECTOR_NAME, DETECTOR_VERSION, store.config_hash)
        write_segments(table, table_path, {"config_hash": store.config_hash, **store.config})
    return SegmentSummary(run, table_path, len(table), seconds, seconds_in_calls)
