"""Evaluation per call: the calls of a box table become the units that are probed and clustered.

A call's rows come from per-call outputs (``<name>-calls`` runs, ``bat_core.calls``) matched to the box by
file and times, or else from a slice of the whole-file output by time (frames per second from the
manifest). Axis 0 is time in every layout a strategy writes: codes ``(T,)``, ``(T', F')`` or
``(T, depth)``, embedding sequences ``(T, D)``; a slice keeps the layout, so n-grams still run along
time. Labels come from the box table's column, or else from annotations.csv (each call takes its
recording's label); folds never split a recording. A label column of our own detector's table
(``bat-core segment``) is never probed: ranking on it would grade the tokenizers against our detector.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bat_core.calls import DETECTED, iter_calls, numbered_boxes, resolve_segments
from bat_core.errors import DatasetError
from bat_core.evaluate.representations import Representation
from bat_core.paths import ProjectPaths

CallKey = tuple[str, int]  # (File Name, call_index)
DETECTOR_COLUMNS = {"detector", "detector_version", "config_hash"}  # what bat-core segment's tables carry
TIME_DIGITS = 6  # boxes match per-call outputs to the microsecond (both hold the table's own float times)


@dataclass(frozen=True)
class CallBoxes:
    """The calls of the selected files, one row each (File Name, call_index, start/end seconds, label columns)."""

    table: pd.DataFrame
    source: str
    ours: bool  # drawn by our own detector: its label columns are never probed
    outside: int = 0  # calls of files outside the selection, left out

    @property
    def keys(self) -> list[CallKey]:
        return list(zip(self.table["File Name"], self.table["call_index"].astype(int)))

    def spans(self) -> dict[str, list[tuple[CallKey, float, float]]]:
        """Per file, its calls in time order: (key, start_s, end_s)."""
        spans: dict[str, list[tuple[CallKey, float, float]]] = {}
        for name, index, start, end in zip(self.table["File Name"], self.table["call_index"],
                                           self.table["start_time_s"], self.table["end_time_s"]):
            spans.setdefault(name, []).append(((name, int(index)), float(start), float(end)))
        return spans

    def column(self, name: str) -> dict[CallKey, str]:
        return {key: str(value) if not pd.isna(value) else "" for key, value in zip(self.keys, self.table[name])}


def read_call_boxes(value: str, paths: ProjectPaths, names: list[str]) -> CallBoxes:
    """``--calls``: a box table's path (CSV or Parquet, the columns ``load_selection`` reads) or ``detected``."""
    from bat_core.segments.table import read_boxes

    path = resolve_segments(value, paths)
    table = numbered_boxes(read_boxes(path), path)
    selected = table["File Name"].isin(set(names))
    ours = value == DETECTED or DETECTOR_COLUMNS <= set(table.columns)
    return CallBoxes(table[selected].reset_index(drop=True), str(path), ours, int((~selected).sum()))


def call_labels(boxes: CallBoxes, column: str, file_labels: dict[str, str] | None) -> tuple[dict[CallKey, str], str]:
    """Each call's label and where it came from: the box table's column, else the recording's (annotations.csv).
    A column of our own detector's table gives no labels (and says why): it is never probed."""
    if column in boxes.table.columns:
        if boxes.ours:
            return {}, (f"not probed: {column!r} is a column of our own detector's table ({boxes.source}), and a label "
                        "our detector made is never ranked")
        return boxes.column(column), f"the box table's {column!r} column ({boxes.source})"
    if file_labels is None:
        raise DatasetError(f"no column {column!r} in the box table {boxes.source} ({list(boxes.table.columns)}) "
                           "nor in annotations.csv")
    return {key: file_labels[key[0]] for key in boxes.keys}, f"annotations.csv's {column!r}, each call taking its recording's"


def frame_range(start_s: float, end_s: float, frames_per_second: float, length: int) -> slice:
    """The frames a box covers: from the one holding its start to the one holding its end, at least one; empty
    when the box starts after the output ends."""
    first = min(math.floor(start_s * frames_per_second), length)
    return slice(first, min(max(math.ceil(end_s * frames_per_second), first + 1), length))


def timed_arrays(representation: Representation) -> Iterator[tuple[str, np.ndarray, float]]:
    """Each file's output with a time axis and its frames per second: codes, 2-D embeddings, or the sequence
    a pooled embedding kept. Files with none (a pooled vector only) are skipped."""
    for name, array in representation.arrays():
        if name in representation.sequences:
            path, fps = representation.sequences[name]
            try:
                yield name, np.load(path, mmap_mode="r"), fps
            except (OSError, ValueError):
                representation._fail(name, "unreadable sequence output, counted as failed")
            continue
        fps = representation.frames_per_second.get(name)
        if fps and fps == fps and (representation.kind == "tokens" or array.ndim > 1):
            yield name, array, float(fps)


def has_time_axis(representation: Representation) -> bool:
    """Whether calls can be cut from this representation (a vector pooled per file cannot be)."""
    if representation.per_call or representation.sequences or representation.kind == "tokens":
        return True
    for path in representation.paths.values():
        try:
            return np.load(path, mmap_mode="r").ndim > 1
        except (OSError, ValueError):
            continue
    return False


def call_arrays(representation: Representation, boxes: CallBoxes, paths: ProjectPaths
                ) -> Iterator[tuple[CallKey, np.ndarray, float]]:
    """Each boxed call's rows and seconds: per-call outputs matched by file and times, else slices of the
    whole-file outputs. Calls with no rows (not encoded, or past the output's end) are not yielded."""
    spans = boxes.spans()
    if not representation.per_call:
        for name, array, fps in timed_arrays(representation):
            for key, start, end in spans.get(name, []):
                rows = np.asarray(array[frame_range(start, end, fps, len(array))])
                if len(rows):
                    yield key, rows, end - start
        return
    config = representation.provenance.get("config_hash", "")
    for name in list(representation.paths):
        wanted = {(round(start, TIME_DIGITS), round(end, TIME_DIGITS)): key for key, start, end in spans.get(name, [])}
        if not wanted:
            continue
        try:
            frames = list(iter_calls(paths, representation.name, [name], config if "," not in config else None))
        except (OSError, ValueError, KeyError) as error:
            representation._fail(name, f"unreadable per-call output ({error.__class__.__name__})")
            continue
        for frame in frames:
            for start, end, encoded_start, encoded_end, values in zip(
                    frame.start_time_s, frame.end_time_s, frame.encoded_start_s, frame.encoded_end_s, frame["values"]):
                key = wanted.get((round(start, TIME_DIGITS), round(end, TIME_DIGITS)))
                if key is not None and len(values):
                    yield key, np.asarray(values), encoded_end - encoded_start


def describe_source(representation: Representation) -> str:
    if representation.per_call:
        return "per-call outputs matched to the boxes by file and times"
    if representation.sequences:
        return "slices by time of each file's embedding sequence (frames per second from the manifest)"
    return "slices by time of each file's output (frames per second from the manifest)"


def mel_slices(mels: dict[str, np.ndarray], fps: dict[str, float], boxes: CallBoxes
               ) -> Iterator[tuple[CallKey, str, slice]]:
    """For the baselines: each call with a mel, its file and its frames (log-mel columns, MFCC rows)."""
    for name, calls in boxes.spans().items():
        if name not in mels:
            continue
        for key, start, end in calls:
            frames = frame_range(start, end, fps[name], mels[name].shape[1])
            if frames.stop > frames.start:
                yield key, name, frames
