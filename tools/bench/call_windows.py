"""Calls vs background windows of shared/bats, cut from calls.csv: the windows and per-window token bags
that the token-quality benchmarks (vqvae_quality.py, hubert_tokens.py) probe.

A call window is centred on each box of calls.csv (batdetect2's boxes: never our own detector's);
background windows are cut from the same recordings, every WINDOW_MS, wherever the window keeps
>= BACKGROUND_GAP_MS from every box. Scripts in tools/bench/ import this module by name (the
script's folder is on sys.path).
"""

from __future__ import annotations

import csv
import os
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from bat_core.dataset import Dataset

WINDOW_MS = 10.0
BACKGROUND_GAP_MS = 5.0


def read_boxes(calls: Path) -> dict[str, list[tuple[float, float]]]:
    """Boxes per recording from calls.csv, or from any table in its layout: ``bat-core segment``'s parquet
    (``--detector batdetect2`` over every recording makes boxes of the same kind as calls.csv's)."""
    boxes: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if calls.suffix == ".parquet":
        import pandas as pd

        rows = pd.read_parquet(calls, columns=["File Name", "start_time_s", "end_time_s"]).to_dict("records")
    else:
        with open(calls, newline="") as handle:
            rows = list(csv.DictReader(handle))
    for row in rows:
        boxes[row["File Name"]].append((float(row["start_time_s"]), float(row["end_time_s"])))
    return dict(boxes)


def windows(boxes: dict[str, list[tuple[float, float]]], durations: dict[str, float],
            background_per_call: int | None = None) -> list[tuple[str, float, float, str]]:
    """(file, start s, end s, label): one call window per box, background windows >= 5 ms from every box;
    ``background_per_call=N``: at most N background windows per call window in each recording, evenly
    spaced over it (balanced classes: recordings with one call and seconds of background otherwise make
    "background" the answer)."""
    half, gap, width = WINDOW_MS / 2000, BACKGROUND_GAP_MS / 1000, WINDOW_MS / 1000
    cut = []
    for name, spans in sorted(boxes.items()):
        for start, end in spans:
            centre = (start + end) / 2
            cut.append((name, max(0.0, centre - half), centre + half, "call"))
        background, position = [], 0.0
        while position + width <= durations[name]:
            if all(position + width <= start - gap or position >= end + gap for start, end in spans):
                background.append((name, position, position + width, "background"))
            position += width
        if background_per_call is not None and len(background) > background_per_call * len(spans):
            keep = np.linspace(0, len(background) - 1, background_per_call * len(spans)).round().astype(int)
            background = [background[index] for index in keep]
        cut.extend(background)
    return cut


def bag(tokens: np.ndarray, size: int) -> np.ndarray:
    counts = np.bincount(tokens.ravel().astype(np.int64), minlength=size).astype(np.float64)
    return counts / max(counts.sum(), 1)


def span(start: float, end: float, per_second: float, length: int) -> slice:
    """Rows (frames or code steps) whose start lies in [start, end): at least one."""
    first = min(int(np.floor(start * per_second)), length - 1)
    return slice(first, max(first + 1, min(length, int(np.ceil(end * per_second)))))


def link_corpus(shared: Path, work: Path) -> Dataset:
    """A project root over shared/bats (read only): audio linked, annotations copied; outputs under ``work``."""
    root = work / "corpus"
    (root / "data").mkdir(parents=True)
    os.symlink(shared / "data" / "audio", root / "data" / "audio")
    shutil.copy(shared / "data" / "annotations.csv", root / "data" / "annotations.csv")
    return Dataset.from_root(root)
