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
from typing import TYPE_CHECKING, Any, Protocol

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
    from bat_core.runner import Prepare
    from bat_core.store import RepresentationStore, RunSummary


class SegmentDetector(Protocol):
    """What the runner and the store need of a detector: who it is, what it was set to, a picklable per-file prepare."""

    name: str
    version: int
    columns: tuple[str, ...]  # of its stored call arrays: CALL_COLUMNS, or fewer (missing ones are NaN in the table)

    def config(self) -> dict: ...  # hashed: {"detector": name, "version": version, "params": ..., ...}

    def prepare(self) -> Prepare: ...  # DatasetItem -> Piece(call array (n, 6)) ... then FileInfo

    def begin_run(self) -> None: ...  # in the main process before any file: check dependencies, say what must be said


@dataclass(frozen=True)
class BandEnergyDetector:
    """The dependency-free band-energy detector (``bat_core.segments.detector``) as a ``SegmentDetector``."""

    params: DetectorParams = DetectorParams()
    name: str = DETECTOR_NAME
    version: int = DETECTOR_VERSION
    columns: tuple[str, ...] = CALL_COLUMNS

    def config(self) -> dict:
        return {"detector": self.name, "version": self.version, "params": asdict(self.params)}

    def prepare(self) -> SegmentPrepare:
        return SegmentPrepare(self.params)

    def begin_run(self) -> None:
        pass


Detection = DetectorParams | SegmentDetector  # band-energy parameters stand for their detector


def as_detector(detection: Detection) -> SegmentDetector:
    return BandEnergyDetector(detection) if isinstance(detection, DetectorParams) else detection


def detector_config(detection: Detection) -> dict:
    """What the config hash covers: the detector, its version and its parameters."""
    return as_detector(detection).config()


def configuration_name(detection: Detection) -> str:
    """``<detector>-<8 hex>`` (``band_energy-...``, ``batdetect2-...``): each configuration's outputs live beside the others'."""
    from bat_core.provenance import config_hash

    return f"{as_detector(detection).name}-{config_hash(detector_config(detection))[:8]}"


def segments_path(paths: ProjectPaths, detection: Detection = DetectorParams()) -> Path:
    """The folded box table of one configuration."""
    return paths.derived / "segments" / f"{configuration_name(detection)}.parquet"


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
    """Gathers a file's call arrays (a few rows per block) and stores them as one array.

    A detector that lacks some of ``CALL_COLUMNS`` stores only its own ``columns`` (the store keeps NaN out of
    ok outputs); the fold puts NaN in the missing ones."""

    def __init__(self, output: Any, columns: tuple[str, ...] = CALL_COLUMNS):
        self.output = output
        self.width = len(columns)
        self.parts: list[np.ndarray] = []

    def add(self, piece: Piece, output: np.ndarray) -> None:
        self.parts.append(np.asarray(output, dtype=np.float64).reshape(-1, self.width))

    def finish(self, info: FileInfo) -> dict:
        calls = np.concatenate(self.parts) if self.parts else np.zeros((0, self.width))
        self.output.put(calls)
        seconds_in_calls = float(np.sum(calls[:, 1] - calls[:, 0])) if len(calls) else 0.0
        return {"frames_per_second": None,
                "extra": {**info.extra, "n_calls": int(len(calls)), "seconds_in_calls": seconds_in_calls}}


def segment_store(dataset: Dataset, detection: Detection, shard: tuple[int, int] | None = None) -> RepresentationStore:
    from bat_core.store import RepresentationStore

    name = configuration_name(detection)
    return RepresentationStore(dataset.paths, f"segments_{name}", dataset.paths.derived / "segments" / name,
                               detector_config(detection), kind="segments", shard=shard)


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


def segment_project(dataset: Dataset, detection: Detection = DetectorParams(), *, overwrite: bool = False,
                    options: RunOptions = RunOptions(), shard: tuple[int, int] | None = None) -> SegmentSummary:
    """Detect calls in every dataset file (resumable; bad files become failed rows), then fold the box table.

    ``detection``: band-energy ``DetectorParams``, or any ``SegmentDetector`` (``Batdetect2Detector``)."""
    from dataclasses import replace

    detector = as_detector(detection)
    detector.begin_run()
    store = segment_store(dataset, detector, shard)
    options = options if options.description else replace(options, description="segment")
    run = run_to_store(dataset, store, detector.prepare(), lambda item, output: CallsAssembler(output, detector.columns),
                       options=options, overwrite=overwrite)
    table_path = segments_path(dataset.paths, detector)
    return fold_segments(store, table_path, run, current_fingerprints(Dataset.from_paths(dataset.paths)))


def current_fingerprints(dataset: Dataset) -> dict[str, str]:
    """File name -> fingerprint of every file of the project's annotations now (all of them, whatever this run
    selected); a file gone from disk has none."""
    fingerprints = {}
    for item in dataset:
        try:
            fingerprints[item.file_name] = item.fingerprint()
        except OSError:
            pass
    return fingerprints


def fold_segments(store: RepresentationStore, table_path: Path, run: RunSummary,
                  fingerprints: dict[str, str]) -> SegmentSummary:
    """The calls of every ok file (this run's and earlier runs', other shards' too) that is in the dataset now, as it
    is now (``fingerprints``), into one box table: a file taken out of annotations.csv, changed since its row was
    written, or of the same name under another root sharing this --derived, has no calls in it."""
    from bat_core.locks import exclusive
    from bat_core.segments.table import segments_frame, write_segments

    with exclusive(store.paths.manifests_dir / f".{store.representation}.fold"):
        manifest = store.read_manifest()
        columns = tuple(store.config.get("columns", CALL_COLUMNS))
        per_file: dict[str, np.ndarray] = {}
        seconds = seconds_in_calls = 0.0
        for row in manifest[manifest.status == "ok"].itertuples():
            if fingerprints.get(row.file_name) != row.source_fingerprint:
                continue
            output = Path(row.output_path)
            output = output if output.is_absolute() else store.paths.derived / output
            if not output.is_file():
                continue
            per_file[row.file_name] = all_call_columns(np.load(output), columns)
            seconds += float(row.seconds or 0.0)
            seconds_in_calls += float(json.loads(row.extra or "{}").get("seconds_in_calls", 0.0))
        # the annotations' order, not the manifest's (files finish in whatever order the engine, its workers
        # and the shards ran them): the same table however it was made
        per_file = {name: per_file[name] for name in fingerprints if name in per_file}
        table = segments_frame(per_file, store.config["detector"], store.config["version"], store.config_hash)
        write_segments(table, table_path, {"config_hash": store.config_hash, **store.config})
    return SegmentSummary(run, table_path, len(table), seconds, seconds_in_calls)


def all_call_columns(calls: np.ndarray, columns: tuple[str, ...]) -> np.ndarray:
    """A stored ``(n, len(columns))`` array as ``(n, 6)`` rows of ``CALL_COLUMNS``, NaN where the detector gives nothing."""
    if columns == CALL_COLUMNS:
        return calls
    calls = np.asarray(calls, dtype=np.float64).reshape(-1, len(columns))
    full = np.full((len(calls), len(CALL_COLUMNS)), np.nan)
    for index, column in enumerate(columns):
        full[:, CALL_COLUMNS.index(column)] = calls[:, index]
    return full


def score_segments(dataset: Dataset, detection: Detection, reference_path: str | Path,
                   scored_files: list[str] | None = None):
    """This configuration's detections against reference boxes (calls.csv layout), for the selected files.

    Scored: the selected files named in the reference, plus ``scored_files`` (files known to hold no call:
    their detections are false positives); of those, only files with an ok row (a failed file has no
    detections to score, and is reported as not scored). Audio kept is measured against each file's
    seconds from the manifest. Returns ``(DetectionScores, names of files that could not be scored)``."""
    from bat_core.segments.scoring import score_detections
    from bat_core.segments.table import FILE, read_boxes

    reference = read_boxes(reference_path)
    store = segment_store(dataset, detection)
    manifest = store.read_manifest()
    ok = manifest[manifest.status == "ok"]
    durations = {name: float(seconds) for name, seconds in zip(ok.file_name, ok.seconds)}
    selected = [item.file_name for item in dataset]
    wanted = set(reference[FILE]) | set(scored_files or [])
    files = [name for name in selected if name in wanted]
    unscored = [name for name in files if name not in durations]
    files = [name for name in files if name in durations]
    table_path = segments_path(dataset.paths, detection)
    detections = read_boxes(table_path)
    scores = score_detections(detections, reference, files=files, durations={name: durations[name] for name in files})
    return scores, unscored
