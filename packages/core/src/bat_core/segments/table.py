"""One schema for boxes: the column names of calls.csv (batdetect2's, and human annotations').

Any table with ``File Name, call_index, start_time_s, end_time_s, low_freq_hz, high_freq_hz``
is a box table (detections, human boxes, another detector's), so what reads boxes never cares
who drew them. Detections add ``peak_freq_hz, score`` and who made them (``detector``,
``detector_version``, ``config_hash``). Each configuration writes its own table,
``derived/segments/<detector>-<config hash>.parquet``: detections never overwrite each other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bat_core.errors import DatasetError
from bat_core.segments.detector import CALL_COLUMNS

FILE = "File Name"
REQUIRED_COLUMNS = (FILE, "start_time_s", "end_time_s")  # what any box table must have; the rest is optional
BOX_COLUMNS = ("File Name", "call_index", "start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz")
SEGMENT_COLUMNS = (*BOX_COLUMNS, "peak_freq_hz", "score", "detector", "detector_version", "config_hash")


def calls_frame(calls: np.ndarray) -> pd.DataFrame:
    """Rows of ``CALL_COLUMNS`` (a detector's array) as a DataFrame with those columns."""
    return pd.DataFrame(np.asarray(calls, dtype=np.float64).reshape(-1, len(CALL_COLUMNS)), columns=list(CALL_COLUMNS))


def segments_frame(per_file: dict[str, np.ndarray], detector: str, version: int, config_hash: str) -> pd.DataFrame:
    """The box table of many files' call arrays (``{file name: (n, 6)}``), calls numbered per file from 0."""
    parts = []
    for file_name, calls in per_file.items():
        frame = calls_frame(calls)
        frame.insert(0, "call_index", np.arange(len(frame), dtype=np.int64))
        frame.insert(0, "File Name", file_name)
        parts.append(frame)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(SEGMENT_COLUMNS[:8]))
    table["call_index"] = table["call_index"].astype("int64")
    for column in CALL_COLUMNS:
        table[column] = table[column].astype("float64")
    table["detector"], table["detector_version"], table["config_hash"] = detector, int(version), config_hash
    table["detector_version"] = table["detector_version"].astype("int64")
    return table[list(SEGMENT_COLUMNS)]


def write_segments(table: pd.DataFrame, path: Path, params: dict | None = None) -> Path:
    """Write a box table atomically (a reader never sees half of it); ``params`` go into the Parquet metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if params is not None:
        metadata = dict(arrow.schema.metadata or {})
        metadata[b"bat_segments"] = json.dumps(params, default=str).encode()
        arrow = arrow.replace_schema_metadata(metadata)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(arrow, temporary)
    os.replace(temporary, path)
    return path


def validate_boxes(table: pd.DataFrame, where: str = "boxes") -> pd.DataFrame:
    """The table with ``File Name`` as text and times as floats, or a DatasetError naming what is wrong."""
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise DatasetError(f"{where}: missing column(s) {missing}; a box table has the columns of shared/bats/calls.csv "
                           f"(at least {list(REQUIRED_COLUMNS)}); found {list(table.columns)}")
    table = table.copy()
    table[FILE] = table[FILE].astype(str)
    problems = []
    for column in ("start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz"):
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        if column in ("start_time_s", "end_time_s"):
            bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        else:  # frequencies are optional per row (a detector may not give them) but must be numbers when present
            bad = (values.isna() & table[column].notna()).to_numpy() | np.isinf(values.to_numpy(dtype=np.float64))
        if bad.any():
            problems.append(f"{column} is missing or not a finite number in {_rows(table.index[bad])}")
        table[column] = values.astype(np.float64)
    if not problems:
        backwards = (table.end_time_s < table.start_time_s).to_numpy()
        if backwards.any():
            problems.append(f"end_time_s < start_time_s in {_rows(table.index[backwards])}")
        negative = (table.start_time_s < 0).to_numpy()
        if negative.any():
            problems.append(f"start_time_s < 0 in {_rows(table.index[negative])}")
    if problems:
        raise DatasetError(f"{where} is not usable: " + "; ".join(problems))
    return table


def _rows(labels: pd.Index, shown: int = 5) -> str:
    listed = ", ".join(str(label) for label in labels[:shown])
    return f"row(s) {listed}" + (f" and {len(labels) - shown} more" if len(labels) > shown else "")


def read_boxes(path: str | Path) -> pd.DataFrame:
    """A box table from CSV (calls.csv, human boxes, any detector's) or Parquet (``bat-core segment``'s), checked;
    extra columns are kept. CSV rows are labelled by their line in the file (header = line 1), so errors point
    at the line to fix."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"box table not found: {path}")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype={FILE: str}, keep_default_na=True)
            table.index = pd.RangeIndex(2, len(table) + 2, name="line")
    except Exception as error:  # a damaged or foreign file: say which and why
        raise DatasetError(f"cannot read the box table {path}: {error}") from error
    return validate_boxes(table, str(path))
