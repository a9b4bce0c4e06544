"""Bat call segments: a band-energy detector (and, optionally, batdetect2) and the box tables they write.

Notebook use::

    from bat_core.segments import detect_calls, DetectorParams
    calls = detect_calls(samples, sample_rate)            # a DataFrame, one row per call
    summary = segment_project(Dataset.from_root("."))     # every file, through the runner and the store
    summary = segment_project(Dataset.from_root("."), Batdetect2Detector())  # bat-core[batdetect2]: its own table
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bat_core.segments.detector import CALL_COLUMNS, DETECTOR_NAME, DETECTOR_VERSION, DetectorParams, StreamingDetector

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CALL_COLUMNS", "DETECTOR_NAME", "DETECTOR_VERSION", "DetectorParams", "StreamingDetector", "detect_calls",
           "segment_project", "segments_path", "read_boxes", "Batdetect2Detector", "Batdetect2Params"]


def detect_calls(samples: np.ndarray, sample_rate: int, params: DetectorParams | None = None) -> pd.DataFrame:
    """Calls in ``samples`` (mono, at ``sample_rate``): columns ``start_time_s, end_time_s, low_freq_hz,
    high_freq_hz, peak_freq_hz, score`` (peak SNR in dB), seconds from the first sample given. The same
    streamed detector as ``bat-core segment``, so a notebook and the command agree call for call."""
    from bat_core.segments.detector import detect_calls_array
    from bat_core.segments.table import calls_frame

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"detect_calls takes mono samples (1-D), got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("samples hold NaN or infinite values")
    calls, _ = detect_calls_array(samples, sample_rate, params)
    return calls_frame(calls)


def __getattr__(name: str):
    if name in ("segment_project", "segments_path"):
        from bat_core.segments import command

        return getattr(command, name)
    if name in ("Batdetect2Detector", "Batdetect2Params"):  # optional: its module imports no torch, batdetect2 runs in workers
        from bat_core.segments import batdetect2

        return getattr(batdetect2, name)
    if name == "read_boxes":
        from bat_core.segments.table import read_boxes

        return read_boxes
    raise AttributeError(name)
