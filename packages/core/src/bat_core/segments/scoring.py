"""How well does a call detector find the reference boxes? One-to-one matching, precision, recall, F1.

Both tables use the layout of ``shared/bats/calls.csv`` (``File Name``, ``start_time_s``,
``end_time_s``, ...; extra columns are kept and ignored), times in seconds of the original
recording. Within each file, detections and references are matched one to one with the Hungarian
algorithm under two criteria, each on its own:

- ``onset``: ``|detection start - reference start| <= onset_tolerance_s`` (10 ms);
- ``iou``: time intersection over union ``>= iou_threshold`` (0.5).

The matching maximises the number of matched pairs, then prefers the closest onsets (``onset``)
or the largest overlaps (``iou``). A detection left unmatched is a false positive, so a reference
overlapped by two detections gives one TP and one FP, and one detection spanning two references
gives one TP and one FN; an echo detected alone is a false positive as its call's box already
holds it.

A ratio whose denominator is zero is 0, as sklearn's ``zero_division=0``: no detections at all
score precision 0 (and recall 0, F1 0), so "found nothing" is never mistaken for a perfect score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bat_core.errors import DatasetError, MissingExtraError
from bat_core.segments.table import FILE, validate_boxes

CRITERIA = ("onset", "iou")
_EPSILON = 1e-9  # seconds written with 7 decimals: an onset exactly at the tolerance stays inside


@dataclass(frozen=True)
class CriterionScores:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)


@dataclass(frozen=True, eq=False)
class DetectionScores:
    """Scores over every scored file, the per-file breakdown, and the matched pairs (row labels of the inputs)."""

    onset: CriterionScores
    iou: CriterionScores
    reference_s: float  # union of the reference boxes, summed over files
    covered_s: float  # the part of it inside some detection
    detected_s: float  # union of the detections (clipped to each file's duration when known)
    audio_s: float  # total duration of the scored files; nan without durations
    per_file: pd.DataFrame
    matches: pd.DataFrame  # File Name, criterion, detection, reference
    onset_tolerance_s: float = 0.010
    iou_threshold: float = 0.5

    @property
    def covered_share(self) -> float:
        """Share of reference call time inside detections (0 when there is no reference time)."""
        return _ratio(self.covered_s, self.reference_s)

    @property
    def kept_share(self) -> float:
        """Share of the audio a detector keeps: what a segmenting run would still process (nan without durations)."""
        return self.detected_s / self.audio_s if self.audio_s > 0 else float("nan")

    def line(self) -> str:
        criteria = ((f"onset<={self.onset_tolerance_s * 1000:g}ms", self.onset), (f"IoU>={self.iou_threshold:g}", self.iou))
        parts = [f"{name}: P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f} (tp {s.tp}, fp {s.fp}, fn {s.fn})"
                 for name, s in criteria]
        parts.append(f"call time covered {self.covered_share:.3f}")
        if not np.isnan(self.kept_share):
            parts.append(f"audio kept {self.kept_share:.3f}")
        return "; ".join(parts)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else 0.0


def _intervals_union(starts: np.ndarray, ends: np.ndarray) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(zip(starts.tolist(), ends.tolist())):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: list[tuple[float, float]]) -> float:
    return float(sum(end - start for start, end in intervals))


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """Total length of the intersection of two sorted disjoint interval lists."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def _pair_costs(det: pd.DataFrame, ref: pd.DataFrame, criterion: str, onset_tolerance_s: float,
                iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(allowed pairs, tie-break cost in [0, 1]) of shape (detections, references)."""
    d_start, d_end = det.start_time_s.to_numpy()[:, None], det.end_time_s.to_numpy()[:, None]
    r_start, r_end = ref.start_time_s.to_numpy()[None, :], ref.end_time_s.to_numpy()[None, :]
    if criterion == "onset":
        error = np.abs(d_start - r_start)
        return error <= onset_tolerance_s + _EPSILON, np.clip(error / max(onset_tolerance_s, _EPSILON), 0, 1)
    intersection = np.clip(np.minimum(d_end, r_end) - np.maximum(d_start, r_start), 0, None)
    union = (d_end - d_start) + (r_end - r_start) - intersection
    iou = np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)
    return iou >= iou_threshold - _EPSILON, 1 - iou


def assignment_solver():
    """scipy's ``linear_sum_assignment``, or a MissingExtraError saying how to get it (asked before a run that scores)."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as error:
        raise MissingExtraError("scoring detections needs scipy: pip install 'bat-core[evaluate]'") from error
    return linear_sum_assignment


def match_boxes(det: pd.DataFrame, ref: pd.DataFrame, criterion: str, *, onset_tolerance_s: float = 0.010,
                iou_threshold: float = 0.5) -> list[tuple[int, int]]:
    """Positional (detection, reference) pairs of a maximum one-to-one matching of one file's boxes."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; known: {CRITERIA}")
    if det.empty or ref.empty:
        return []
    linear_sum_assignment = assignment_solver()
    allowed, tie_break = _pair_costs(det, ref, criterion, onset_tolerance_s, iou_threshold)
    if not allowed.any():
        return []
    # A disallowed pair costs more than any number of tie-breaks (each < 1), so the assignment first
    # maximises the number of allowed pairs, then minimises onset error / maximises IoU among them.
    forbidden = float(min(allowed.shape) + 1)
    rows, columns = linear_sum_assignment(np.where(allowed, tie_break, forbidden))
    return [(int(r), int(c)) for r, c in zip(rows, columns) if allowed[r, c]]


def score_detections(detections: pd.DataFrame, reference: pd.DataFrame, *, files: Sequence[str] | None = None,
                     durations: Mapping[str, float] | None = None, onset_tolerance_s: float = 0.010,
                     iou_threshold: float = 0.5) -> DetectionScores:
    """Score detections against reference boxes, file by file.

    Scored files: ``files`` when given (a listed file without reference rows still counts: its
    detections are false positives; rows of unlisted files, in either table, are ignored, so a
    subset or a shard can be scored against the whole reference), else every file named
    in either table or in ``durations``. ``durations`` (seconds per file) gives the share of audio kept;
    it must then cover every scored file.
    """
    detections = validate_boxes(detections, "detections")
    reference = validate_boxes(reference, "reference")
    if files is None:
        scored = sorted(set(reference[FILE]) | set(detections[FILE]) | set(durations or {}))
    else:
        scored = list(dict.fromkeys(str(name) for name in files))
    if durations is not None:
        lacking = [name for name in scored if name not in durations]
        if lacking:
            raise DatasetError(f"no duration for {len(lacking)} scored file(s), e.g. {lacking[:3]}")

    det_groups = {name: group for name, group in detections.groupby(FILE, sort=False)}
    ref_groups = {name: group for name, group in reference.groupby(FILE, sort=False)}
    empty = detections.iloc[:0]
    totals = {criterion: [0, 0, 0] for criterion in CRITERIA}
    rows, matched = [], []
    for name in scored:
        det = det_groups.get(name, empty)
        ref = ref_groups.get(name, reference.iloc[:0])
        row: dict = {FILE: name, "references": len(ref), "detections": len(det)}
        for criterion in CRITERIA:
            pairs = match_boxes(det, ref, criterion, onset_tolerance_s=onset_tolerance_s, iou_threshold=iou_threshold)
            counts = CriterionScores(len(pairs), len(det) - len(pairs), len(ref) - len(pairs))
            totals[criterion] = [a + b for a, b in zip(totals[criterion], (counts.tp, counts.fp, counts.fn))]
            row.update({f"{criterion}_tp": counts.tp, f"{criterion}_fp": counts.fp, f"{criterion}_fn": counts.fn,
                        f"{criterion}_precision": counts.precision, f"{criterion}_recall": counts.recall, f"{criterion}_f1": counts.f1})
            matched.extend((name, criterion, det.index[d], ref.index[r]) for d, r in pairs)
        duration = float(durations[name]) if durations is not None else float("nan")
        det_starts, det_ends = det.start_time_s.to_numpy(), det.end_time_s.to_numpy()
        if durations is not None:
            det_starts, det_ends = np.clip(det_starts, 0, duration), np.clip(det_ends, 0, duration)
        det_union = _intervals_union(det_starts, det_ends)
        ref_union = _intervals_union(ref.start_time_s.to_numpy(), ref.end_time_s.to_numpy())
        row.update({"reference_s": _length(ref_union), "covered_s": _overlap(ref_union, det_union),
                    "detected_s": _length(det_union), "duration_s": duration})
        rows.append(row)

    per_file = pd.DataFrame(rows, columns=[FILE, "references", "detections",
                                           *[f"{c}_{k}" for c in CRITERIA for k in ("tp", "fp", "fn", "precision", "recall", "f1")],
                                           "reference_s", "covered_s", "detected_s", "duration_s"])
    return DetectionScores(
        onset=CriterionScores(*totals["onset"]), iou=CriterionScores(*totals["iou"]),
        reference_s=float(per_file.reference_s.sum()), covered_s=float(per_file.covered_s.sum()),
        detected_s=float(per_file.detected_s.sum()),
        audio_s=float(per_file.duration_s.sum()) if durations is not None else float("nan"),
        per_file=per_file, matches=pd.DataFrame(matched, columns=[FILE, "criterion", "detection", "reference"]),
        onset_tolerance_s=onset_tolerance_s, iou_threshold=iou_threshold)
