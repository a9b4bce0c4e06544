"""Detector scoring on hand-made boxes whose answers are known."""

import math

import pandas as pd
import pytest

from bat_core.errors import DatasetError
from bat_core.segments.scoring import score_detections
from bat_core.segments.table import read_boxes


def boxes(*rows, name="a.wav"):
    """Rows (start, end) or (file, start, end) -> a calls.csv-style table."""
    rows = [row if len(row) == 3 else (name, *row) for row in rows]
    return pd.DataFrame(rows, columns=["File Name", "start_time_s", "end_time_s"])


def counts(criterion):
    return criterion.tp, criterion.fp, criterion.fn


def test_exact_matches_score_one():
    reference = boxes((0.1, 0.12), (0.3, 0.305), (0.5, 0.52))
    scores = score_detections(reference.copy(), reference)
    assert counts(scores.onset) == counts(scores.iou) == (3, 0, 0)
    assert scores.onset.f1 == scores.iou.f1 == 1.0
    assert scores.covered_share == 1.0


@pytest.mark.parametrize(("shift", "matched"), [(0.0099, 1), (0.0100, 1), (-0.0100, 1), (0.0101, 0), (-0.0105, 0)])
def test_onset_tolerance_is_ten_ms(shift, matched):
    reference = boxes((0.2, 0.25))
    scores = score_detections(boxes((0.2 + shift, 0.25 + shift)), reference)
    assert counts(scores.onset) == (matched, 1 - matched, 1 - matched)


@pytest.mark.parametrize(("end", "matched"), [(0.149, 0), (0.151, 1), (0.150, 1)])
def test_iou_threshold_is_half(end, matched):
    # reference 0.1-0.2; detection 0.1-end: IoU = (end - 0.1) / 0.1
    scores = score_detections(boxes((0.1, end)), boxes((0.1, 0.2)))
    assert counts(scores.iou) == (matched, 1 - matched, 1 - matched)
    assert counts(scores.onset) == (1, 0, 0)


def test_one_reference_two_detections_is_one_tp_one_fp():
    reference = boxes((0.1, 0.12))
    detections = boxes((0.101, 0.121), (0.104, 0.118))
    scores = score_detections(detections, reference)
    assert counts(scores.onset) == counts(scores.iou) == (1, 1, 0)
    assert scores.onset.precision == 0.5 and scores.onset.recall == 1.0
    assert math.isclose(scores.onset.f1, 2 / 3)
    # the tie-break keeps the closer onset and the larger overlap
    assert scores.matches.query("criterion == 'onset'").detection.tolist() == [0]
    assert scores.matches.query("criterion == 'iou'").detection.tolist() == [0]


def test_one_detection_over_two_references_is_one_tp_one_fn():
    reference = boxes((0.100, 0.110), (0.112, 0.116))
    detections = boxes((0.100, 0.116))
    scores = score_detections(detections, reference)
    assert counts(scores.onset) == (1, 0, 1)
    assert counts(scores.iou) == (1, 0, 1)  # IoU 10/16 with the first, 4/16 with the second
    assert scores.matches.reference.tolist() == [0, 0]
    assert scores.covered_share == 1.0


def test_matching_maximises_pairs_not_greedy_closeness():
    # d0 is closest to r1, but taking that pair would leave r0 unmatched: the one-to-one optimum pairs d0-r0, d1-r1
    reference = boxes((0.100, 0.11), (0.108, 0.12))
    detections = boxes((0.106, 0.11), (0.117, 0.12))
    scores = score_detections(detections, reference)
    assert counts(scores.onset) == (2, 0, 0)
    assert sorted(scores.matches.query("criterion == 'onset'")[["detection", "reference"]].itertuples(index=False, name=None)) == [(0, 0), (1, 1)]


def test_boxes_are_matched_within_their_own_file_only():
    reference = boxes(("a.wav", 0.1, 0.12), ("b.wav", 0.5, 0.52))
    detections = boxes(("b.wav", 0.1, 0.12), ("a.wav", 0.5, 0.52))
    scores = score_detections(detections, reference)
    assert counts(scores.onset) == counts(scores.iou) == (0, 2, 2)


def test_listed_file_without_reference_counts_and_unlisted_files_are_ignored():
    reference = boxes(("a.wav", 0.1, 0.12))
    detections = boxes(("a.wav", 0.1, 0.12), ("silent.wav", 0.3, 0.31), ("other.wav", 0.3, 0.31))
    scores = score_detections(detections, reference, files=["a.wav", "silent.wav"])
    assert counts(scores.onset) == (1, 1, 0)
    assert scores.per_file["File Name"].tolist() == ["a.wav", "silent.wav"]
    silent = scores.per_file.set_index("File Name").loc["silent.wav"]
    assert (silent.references, silent.detections, silent.onset_fp) == (0, 1, 1)
    # without a list, every file named anywhere is scored
    assert counts(score_detections(detections, reference).onset) == (1, 2, 0)


def test_no_detections_score_zero_not_nan():
    reference = boxes((0.1, 0.12), (0.3, 0.32))
    scores = score_detections(boxes(), reference)
    assert counts(scores.onset) == (0, 0, 2)
    assert (scores.onset.precision, scores.onset.recall, scores.onset.f1) == (0.0, 0.0, 0.0)
    assert scores.covered_share == 0.0 and scores.detected_s == 0.0


def test_coverage_and_audio_kept_arithmetic():
    # a: references 0.1-0.2 and 0.15-0.3 (union 0.2 s); detections 0.05-0.15 and 0.25-0.4 (0.25 s), 0.1 s of the union covered
    # b: one reference 0.0-0.1, detection 0.9-1.2 clipped to the file's 1.0 s: 0.1 s kept, nothing covered
    reference = boxes(("a.wav", 0.1, 0.2), ("a.wav", 0.15, 0.3), ("b.wav", 0.0, 0.1))
    detections = boxes(("a.wav", 0.05, 0.15), ("a.wav", 0.25, 0.4), ("b.wav", 0.9, 1.2))
    scores = score_detections(detections, reference, durations={"a.wav": 2.0, "b.wav": 1.0, "c.wav": 1.0})
    assert math.isclose(scores.reference_s, 0.3)
    assert math.isclose(scores.covered_s, 0.1)
    assert math.isclose(scores.covered_share, 1 / 3)
    assert math.isclose(scores.detected_s, 0.35)
    assert math.isclose(scores.audio_s, 4.0)
    assert math.isclose(scores.kept_share, 0.35 / 4.0)
    assert "c.wav" in set(scores.per_file["File Name"])
    assert math.isnan(score_detections(detections, reference).kept_share)


def test_durations_must_cover_the_scored_files():
    with pytest.raises(DatasetError, match="no duration"):
        score_detections(boxes((0.1, 0.2)), boxes((0.1, 0.2)), durations={"b.wav": 1.0})


def test_read_boxes_accepts_extra_columns(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("File Name,call_index,start_time_s,end_time_s,low_freq_hz,high_freq_hz,species,notes\n"
                    "a.wav,0,0.1,0.12,30000,90000,FM,\n"
                    "a.wav,1,0.3,0.31,,,QCF,echo\n")
    table = read_boxes(path)
    assert len(table) == 2 and table.start_time_s.tolist() == [0.1, 0.3] and table.species.tolist() == ["FM", "QCF"]


@pytest.mark.parametrize(("text", "message"), [
    ("File Name,start_time_s\na.wav,0.1\n", r"missing column\(s\) \['end_time_s'\]"),
    ("File Name,start_time_s,end_time_s\na.wav,0.1,0.2\na.wav,0.3,0.25\n", r"end_time_s < start_time_s in row\(s\) 3"),
    ("File Name,start_time_s,end_time_s\na.wav,0.1,inf\n", r"end_time_s is missing or not a finite number in row\(s\) 2"),
    ("File Name,start_time_s,end_time_s\na.wav,,0.2\n", r"start_time_s is missing or not a finite number"),
    ("File Name,start_time_s,end_time_s,low_freq_hz\na.wav,0.1,0.2,lots\n", r"low_freq_hz is missing or not a finite number"),
])
def test_read_boxes_names_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "calls.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_boxes(path)


def test_read_boxes_reads_the_demo_corpus_truth(tmp_path):
    from bat_core.demo import write_demo_corpus

    root = write_demo_corpus(tmp_path, n_files=3)
    reference = read_boxes(root / "data" / "calls.csv")
    assert counts(score_detections(reference, reference).iou) == (len(reference), 0, 0)
