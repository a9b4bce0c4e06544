"""Evaluation per call (bat-core evaluate --calls): calls cut by time or matched to per-call outputs, grouped
by recording, never ranked on our own detector's labels nor on labels confounded with recording."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bat_core.calls import load_selection, per_call, write_calls_table
from bat_core.dataset import Dataset
from bat_core.evaluate import evaluate_project
from bat_core.evaluate.per_call import CallBoxes, call_arrays, frame_range
from bat_core.evaluate.representations import discover
from bat_core.runner import AppendOutputs, AudioPrepare, RunOptions, run_to_store
from bat_core.store import RepresentationStore
from bat_core.testing import SamplePieces, require_shared_bats, write_project

QUIET = RunOptions(workers=0, show_progress=False)
RATE = 192_000


def _strict(path):
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"bare {name} in report.json"))


def _tokens(dataset, name, arrays, fps):
    store = RepresentationStore(dataset.paths, name, dataset.paths.tokens_dir, {"v": 1}, file_pattern=name + "_{stem}.npy",
                                kind="tokens", codebook_size=1000)
    for item in store.begin(list(dataset)):
        store.write(item, arrays[item.file_name], frames_per_second=fps, seconds=1.0)
    store.finish()


def test_calls_are_cut_from_whole_file_outputs_by_time_in_every_code_layout(tmp_path):
    assert frame_range(0.10, 0.125, 100.0, 500) == slice(10, 13)
    assert frame_range(0.10, 0.10, 100.0, 500) == slice(10, 11)  # a zero-width box still holds its frame
    assert frame_range(6.0, 6.1, 100.0, 500).start == 500  # past the output's end: empty
    root = write_project(tmp_path / "p", {"a.wav": (np.zeros(RATE, np.float32), RATE)})
    dataset = Dataset.from_root(root)
    _tokens(dataset, "flat", {"a.wav": np.arange(500, dtype=np.int16)}, 500.0)
    _tokens(dataset, "grid", {"a.wav": np.arange(400, dtype=np.int16).reshape(100, 4)}, 100.0)  # (T', F')
    table = pd.DataFrame({"File Name": ["a.wav"] * 3, "call_index": [0, 1, 2], "start_time_s": [0.1, 0.5, 3.0],
                          "end_time_s": [0.104, 0.52, 3.01]})
    boxes = CallBoxes(table, "boxes", ours=False)
    flat, grid = discover(dataset.paths, ["a.wav"])
    cut = {key: rows for key, rows, _ in call_arrays(flat, boxes, dataset.paths)}
    assert set(cut) == {("a.wav", 0), ("a.wav", 1)}  # call 2 lies past the end of the file's codes
    np.testing.assert_array_equal(cut["a.wav", 0], [50, 51])
    np.testing.assert_array_equal(cut["a.wav", 1], np.arange(250, 260))
    cut = {key: rows for key, rows, _ in call_arrays(grid, boxes, dataset.paths)}
    np.testing.assert_array_equal(cut["a.wav", 1], np.arange(200, 208).reshape(2, 4))  # time rows, every frequency row



def test_per_call_outputs_are_matched_to_the_boxes_by_times_and_probed_grouped_by_recording(tmp_path):
    """Ramps (sample i of n is i / n): a call's mean output says where in its file it lies. The evaluated table
    numbers its calls otherwise than the run's, so only a match by times gives each call its own output."""
    seconds = (0.5, 0.4, 0.6)
    recordings = {f"r{i}.wav": (np.arange(int(s * RATE), dtype=np.float32) / int(s * RATE), RATE) for i, s in enumerate(seconds)}
    dataset = Dataset.from_root(write_project(tmp_path / "p", recordings, subtype="FLOAT"))
    rows = []
    for file_index, duration in enumerate(seconds):
        for share in (0.1, 0.2, 0.3, 0.7, 0.8, 0.9):
            start = round(share * duration, 4)
            rows.append((f"r{file_index}.wav", start, start + 0.002, "early" if share < 0.5 else "late"))
    boxes = pd.DataFrame(rows, columns=["File Name", "start_time_s", "end_time_s", "position"])
    boxes[["File Name", "start_time_s", "end_time_s"]].to_csv(tmp_path / "run.csv", index=False)
    selection = load_selection(tmp_path / "run.csv", 0.0)
    store = RepresentationStore(dataset.paths, "raw-calls", dataset.paths.derived / "raw-calls", {"calls": selection.settings()})
    prepare, assembler = per_call(AudioPrepare(SamplePieces(), None), lambda output: AppendOutputs(output), selection,
                                  min_samples=1, empty=np.zeros(0, dtype=np.float32))
    run_to_store(list(dataset), store, prepare, assembler, options=QUIET)
    write_calls_table(store)
    boxes["call_index"] = 100 - boxes.groupby("File Name").cumcount()  # another numbering than the run's
    boxes.to_csv(tmp_path / "eval.csv", index=False)

    report = evaluate_project(dataset, "position", out_dir=tmp_path / "report", examples=0, options=QUIET,
                              calls=str(tmp_path / "eval.csv"))
    data = _strict(report.json)
    row = next(r for r in data["rows"] if r["name"] == "raw-calls")
    assert data["unit"] == "call" and data["calls"] == 18 and data["class_counts"] == {"early": 9, "late": 9}
    assert row["calls_ok"] == 18 and row["calls_missing"] == 0 and "per-call outputs" in row["call_features"]
    assert row["probe_defined"] and row["folds"] == 3  # three recordings: a fold holds out a whole recording
    assert row["probe_accuracy"] == 1.0
    representation = next(r for r in discover(dataset.paths, list(recordings), calls=True) if r.name == "raw-calls")
    table = boxes.rename(columns={"position": "label"})
    for key, values, _ in call_arrays(representation, CallBoxes(table, "eval.csv", ours=False), dataset.paths):
        box = table[(table["File Name"] == key[0]) & (table.call_index == key[1])].iloc[0]
        duration = seconds[int(key[0][1])]
        assert values.mean() == pytest.approx((box.start_time_s + 0.001) / duration, abs=2e-3)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """12 demo files with mels, bat-core segment's table, a perfect token strategy and a pooled noise embedding."""
    from bat_core.mels import MelConfig, compute_mels
    from bat_core.segments import segment_project
    from bat_core.testing import make_demo_project

    dataset = Dataset.from_root(make_demo_project(tmp_path_factory.mktemp("demo") / "p", n_files=12))
    classes = sorted(set(dataset.labels("call_type")))
    _tokens(dataset, "perfect", {item.file_name: np.full(400, classes.index(item.labels["call_type"]), np.int16)
                                 for item in dataset}, 400.0)
    noise = RepresentationStore(dataset.paths, "noise", dataset.paths.derived / "noise", {"v": 1})
    for item in noise.begin(list(dataset)):
        noise.write(item, np.random.default_rng(0).standard_normal(16).astype(np.float32), seconds=1.0)
    noise.finish()
    compute_mels(dataset, MelConfig(), options=QUIET)
    segment_project(dataset, options=QUIET)
    return dataset


def test_per_call_report_on_the_demo_calls_table(demo, tmp_path):
    calls = pd.read_csv(demo.paths.root / "data" / "calls.csv")
    report = evaluate_project(demo, "species", out_dir=tmp_path, examples=0, options=QUIET,
                              calls=str(demo.paths.root / "data" / "calls.csv"))
    data = _strict(report.json)
    rows = {row["name"]: row for row in data["rows"]}
    assert data["unit"] == "call" and data["calls"] == len(calls) and "box table's 'species'" in data["label_source"]
    assert set(rows) == {"perfect", "majority", "mfcc_kmeans", "mean_log_mel"}  # segments never ranked
    assert any("noise: one vector per file" in note for note in data["notes"])  # a pooled vector has no calls
    assert rows["perfect"]["calls_ok"] == len(calls) and rows["perfect"]["probe_accuracy"] == 1.0
    assert rows["perfect"]["tokens_per_second"] == pytest.approx(400.0, rel=0.2)  # per call seconds, not per file
    for row in rows.values():
        assert row["probe_defined"] and row["calls_ok"] == len(calls) and row["probe_files"] == len(calls)
    assert "| calls ok/missing |" in report.markdown.read_text()


def test_labels_confounded_with_recording_or_made_by_our_detector_are_never_ranked(demo, tmp_path):
    calls = pd.read_csv(demo.paths.root / "data" / "calls.csv")
    calls["individual"] = calls["File Name"].str.slice(0, 8)  # one individual per recording: confounded
    calls.to_csv(tmp_path / "calls.csv", index=False)
    report = evaluate_project(demo, "individual", out_dir=tmp_path / "confounded", examples=0, options=QUIET,
                              calls=str(tmp_path / "calls.csv"))
    data = _strict(report.json)
    for row in data["rows"]:
        assert not row["probe_defined"] and row["probe_accuracy"] is None and row["confounded_classes"]
    assert not any("loses to" in note for note in data["notes"])
    assert any("measure the group" in note for note in data["notes"])

    detected = evaluate_project(demo, "peak_freq_hz", out_dir=tmp_path / "ours", examples=0, options=QUIET, calls="detected")
    data = _strict(detected.json)
    assert data["detector_table"] and data["calls"] > 12
    assert all(row["probe_accuracy"] is None for row in data["rows"])
    assert any("our own detector" in note and "never ranked" in note for note in data["notes"])
    # our boxes with a label a person gave (annotations.csv): each call takes its recording's label, grouped by it
    labelled = evaluate_project(demo, "call_type", out_dir=tmp_path / "ok", examples=0, options=QUIET, calls="detected")
    rows = {row["name"]: row for row in _strict(labelled.json)["rows"]}
    assert rows["perfect"]["probe_accuracy"] == 1.0 and rows["perfect"]["calls_ok"] == _strict(labelled.json)["calls"]


def test_real_recordings_per_call_and_whole_file_species_are_confounded(tmp_path):
    """shared/bats: calls.csv's species (batdetect2's) per call, and the file species (70 of 78 labelled files are one
    uncertain species from one recording series): confounded with recording, so no probe and no ranking."""
    root = require_shared_bats()
    dataset = Dataset.from_root(root, derived=tmp_path / "derived")
    report = evaluate_project(dataset, "species", out_dir=tmp_path / "calls", examples=0, options=QUIET,
                              calls=str(root / "calls.csv"))
    data = _strict(report.json)
    assert data["calls"] == 44 and data["files_with_calls"] == 3 and len(data["class_counts"]) == 4
    for row in data["rows"]:
        assert row["calls_ok"] == 44 and row["files_ok"] == 3 and row["probe_accuracy"] is None  # mels of 3 files only
        assert {"Myotis mystacinus", "Eptesicus serotinus", "Rhinolophus ferrumequinum"} <= set(row["confounded_classes"])
    files = evaluate_project(dataset, "species", "recordist_or_contributor", out_dir=tmp_path / "files", examples=0,
                             options=QUIET)
    data = _strict(files.json)
    assert data["class_counts"]["Rhinolophus euryale/mehelyi (uncertain)"] == 70
    for row in data["rows"]:
        assert row["probe_accuracy"] is None and "Rhinolophus euryale/mehelyi (uncertain)" in row["confounded_classes"]
    assert not (root / "derived").exists(), "nothing written into shared/"
