"""Per-call encoding (bat_core.calls): spans, widening, the call index, the folded table, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bat_core.calls import (
    CallSpan,
    calls_table,
    calls_table_path,
    encoded_bounds,
    load_selection,
    per_call,
    per_call_tag,
    write_calls_table,
)
from bat_core.dataset import Dataset
from bat_core.errors import AudioError, DatasetError
from bat_core.runner import AppendOutputs, AudioPrepare, RunOptions, run_to_store
from bat_core.store import RepresentationStore
from bat_core.testing import SamplePieces, write_project

RATE = 192_000



def _ramp_project(root, seconds=(0.5, 0.3, 0.2)) -> Dataset:
    """Recordings whose sample i is i / n (float WAV): any span read back says exactly where it came from."""
    recordings = {f"r{i}.wav": (np.arange(int(s * RATE), dtype=np.float32) / int(s * RATE), RATE)
                  for i, s in enumerate(seconds)}
    write_project(root, recordings, subtype="FLOAT")
    return Dataset.from_root(root)


def _boxes(path, rows) -> str:
    pd.DataFrame(rows, columns=["File Name", "start_time_s", "end_time_s"]).to_csv(path, index=False)
    return str(path)


def _run(dataset: Dataset, selection, min_samples: int = 1, overwrite: bool = False):
    store = RepresentationStore(dataset.paths, "raw-calls", dataset.paths.derived / "raw-calls",
                                {"calls": selection.settings()})
    prepare, assembler = per_call(AudioPrepare(SamplePieces(), None), lambda output: AppendOutputs(output), selection,
                                  min_samples=min_samples, empty=np.zeros(0, dtype=np.float32))
    summary = run_to_store(list(dataset), store, prepare, assembler, options=RunOptions(workers=0, show_progress=False),
                           overwrite=overwrite)
    write_calls_table(store)
    return summary


def test_encoded_bounds_add_context_and_widen_with_real_audio_never_past_the_file():
    span = CallSpan(0, 0.100, 0.102)  # a 2 ms call at 1 kHz rate arithmetic: samples 100..102
    assert encoded_bounds(span, 1000, 1000, 0.005, need=1) == (95, 107)
    start, stop = encoded_bounds(span, 1000, 1000, 0.0, need=40)  # widened around its centre
    assert stop - start == 40 and start <= 100 and stop >= 102
    start, stop = encoded_bounds(CallSpan(1, 0.0, 0.002), 1000, 1000, 0.0, need=40)  # at the start: widened inwards
    assert (start, stop) == (0, 40)
    start, stop = encoded_bounds(CallSpan(2, 0.998, 0.9995), 1000, 1000, 0.005, need=40)  # at the end
    assert (start, stop) == (960, 1000)
    with pytest.raises(AudioError, match="after the end of the recording"):
        encoded_bounds(CallSpan(3, 1.5, 1.6), 1000, 1000, 0.0, need=1)
    with pytest.raises(AudioError, match="shorter than the model's shortest input"):
        encoded_bounds(CallSpan(4, 0.0, 0.001), 1000, 30, 0.0, need=40)
    # a clip shorter than the widening but holding the shortest input is taken whole (the strategy pads it)
    assert encoded_bounds(CallSpan(5, 0.010, 0.012), 1000, 30, 0.0, need=40, least=20) == (0, 30)
    with pytest.raises(AudioError, match=r"shortest input \(20\.00 ms"):
        encoded_bounds(CallSpan(6, 0.0, 0.001), 1000, 15, 0.0, need=40, least=20)


def test_selection_numbers_calls_per_file_and_refuses_what_is_not_a_call_table(tmp_path):
    path = _boxes(tmp_path / "b.csv", [("a.wav", 0.3, 0.31), ("a.wav", 0.1, 0.11), ("b.wav", 0.2, 0.21)])
    selection = load_selection(path, 0.002)
    assert [(s.call_index, s.start_s) for s in selection.spans["a.wav"]] == [(0, 0.1), (1, 0.3)]
    assert selection.calls == 3 and selection.settings()["context_s"] == 0.002
    given = tmp_path / "given.csv"
    pd.DataFrame({"File Name": ["a.wav", "a.wav"], "call_index": [7, 3], "start_time_s": [0.1, 0.3],
                  "end_time_s": [0.11, 0.31]}).to_csv(given, index=False)
    assert [s.call_index for s in load_selection(given).spans["a.wav"]] == [7, 3]  # kept, in time order
    twice = tmp_path / "twice.csv"
    pd.DataFrame({"File Name": ["a.wav", "a.wav"], "call_index": [1, 1], "start_time_s": [0.1, 0.3],
                  "end_time_s": [0.11, 0.31]}).to_csv(twice, index=False)
    with pytest.raises(DatasetError, match="appears twice"):
        load_selection(twice)
    with pytest.raises(DatasetError, match="per-call encoding takes calls up to"):
        load_selection(_boxes(tmp_path / "long.csv", [("a.wav", 0.0, 60.0)]))
    with pytest.raises(DatasetError, match="missing column"):
        pd.DataFrame({"File Name": ["a.wav"], "start": [0.1]}).to_csv(tmp_path / "bad.csv", index=False)
        load_selection(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="context"):
        load_selection(path, float("nan"))


def test_per_call_outputs_are_the_calls_own_samples_in_original_seconds(tmp_path):
    dataset = _ramp_project(tmp_path / "p")
    table = _boxes(tmp_path / "b.csv", [("r0.wav", 0.1, 0.11), ("r0.wav", 0.4, 0.402), ("r1.wav", 0.0, 0.005),
                                        ("r1.wav", 0.299, 0.2999)])  # r2: no call
    need = 2000  # ~10.4 ms: the 2 ms call and the edge calls are widened with the recording's own audio
    summary = _run(dataset, load_selection(table, 0.003), min_samples=need)
    assert (summary.done, summary.failed) == (3, 0)
    calls = pd.read_parquet(calls_table_path(dataset.paths, "raw-calls"))
    assert list(calls["File Name"]) == ["r0.wav", "r0.wav", "r1.wav", "r1.wav"]
    assert list(calls.call_index) == [0, 1, 0, 1]
    lengths = {"r0.wav": int(0.5 * RATE), "r1.wav": int(0.3 * RATE)}
    for row in calls.itertuples():
        values = np.asarray(row.values, dtype=np.float32)
        start, stop = round(row.encoded_start_s * RATE), round(row.encoded_end_s * RATE)
        n = lengths[row._1]
        np.testing.assert_array_equal(values, np.arange(start, stop, dtype=np.float32) / n)  # exactly that span
        assert row.encoded_start_s <= max(0.0, row.start_time_s - 0.003) + 1e-9
        assert row.encoded_end_s >= min(n / RATE, row.end_time_s + 0.003) - 1e-9 or stop - start >= need
        assert stop - start >= need and 0 <= start and stop <= n
    first = calls.iloc[0]
    assert first.encoded_start_s == pytest.approx(0.097, abs=1 / RATE) and first.encoded_end_s == pytest.approx(
        0.113, abs=1 / RATE)
    manifest = pd.read_parquet(dataset.paths.manifest_path("raw-calls")).set_index("file_name")
    assert manifest.loc["r2.wav", "status"] == "ok" and '"calls": 0' in manifest.loc["r2.wav", "extra"]
    assert calls_table(dataset.paths, "raw-calls").shape[0] == 4


def test_per_call_run_resumes_and_redoes_outputs_of_another_table(tmp_path):
    dataset = _ramp_project(tmp_path / "p")
    table = _boxes(tmp_path / "b.csv", [("r0.wav", 0.1, 0.11)])
    assert _run(dataset, load_selection(table)).done == 3
    again = _run(dataset, load_selection(table))
    assert (again.done, again.skipped) == (0, 3)
    other = _boxes(tmp_path / "c.csv", [("r0.wav", 0.2, 0.21), ("r2.wav", 0.05, 0.06)])
    redone = _run(dataset, load_selection(other))
    assert redone.done == 3 and redone.stale == 3
    calls = pd.read_parquet(calls_table_path(dataset.paths, "raw-calls"))
    assert list(zip(calls["File Name"], calls.start_time_s)) == [("r0.wav", 0.2), ("r2.wav", 0.05)]


def test_a_box_outside_its_recording_or_a_bad_file_is_one_failed_row(tmp_path):
    dataset = _ramp_project(tmp_path / "p")
    (dataset.paths.audio_dir / "r1.wav").write_bytes(b"not audio")
    table = _boxes(tmp_path / "b.csv", [("r0.wav", 0.1, 0.11), ("r2.wav", 0.9, 0.91), ("r1.wav", 0.1, 0.11)])
    summary = _run(dataset, load_selection(table))
    assert (summary.done, summary.failed) == (1, 2)
    reasons = dict(summary.failures)
    assert "after the end of the recording" in reasons["r2.wav"]
    assert list(pd.read_parquet(calls_table_path(dataset.paths, "raw-calls"))["File Name"]) == ["r0.wav"]


def test_per_call_tag_keeps_whole_file_outputs_apart():
    assert per_call_tag(None) is None and per_call_tag("k64") == "k64"
    assert per_call_tag(None, per_call=True) == "calls" and per_call_tag("k64", per_call=True) == "k64-calls"
    assert per_call_tag("calls", per_call=True) == "calls"


def test_the_folded_table_holds_every_current_call_whatever_subset_a_run_covered(tmp_path):
    dataset = _ramp_project(tmp_path / "p")
    first = _boxes(tmp_path / "b.csv", [("r0.wav", 0.1, 0.11), ("r1.wav", 0.1, 0.11), ("r2.wav", 0.1, 0.11)])
    _run(dataset, load_selection(first))
    path = calls_table_path(dataset.paths, "raw-calls")
    assert len(pd.read_parquet(path)) == 3
    _run(dataset.select(limit=1), load_selection(first))  # a subset rerun: all skipped, the table stays whole
    assert len(pd.read_parquet(path)) == 3
    second = _boxes(tmp_path / "c.csv", [("r0.wav", 0.2, 0.21)])
    _run(dataset.select(limit=1), load_selection(second))  # r0 redone with another table: r1, r2 are stale now
    assert list(zip(pd.read_parquet(path)["File Name"], pd.read_parquet(path).start_time_s)) == [("r0.wav", 0.2)]
    import pyarrow.parquet as pq

    assert pq.read_schema(path).field("values").type.value_type == "float"  # float32 stays float32


def test_reserved_tags_huge_indices_and_unmatched_tables_are_refused(tmp_path):
    import argparse

    from bat_core.cli_common import selection_from_args
    from bat_core.errors import BatError

    with pytest.raises(BatError, match="kept for per-call runs"):
        per_call_tag("x-calls")
    big = tmp_path / "big.csv"
    pd.DataFrame({"File Name": ["r0.wav"], "call_index": [2**60], "start_time_s": [0.1], "end_time_s": [0.2]}).to_csv(
        big, index=False)
    with pytest.raises(DatasetError, match="call_index must be whole numbers"):
        load_selection(big)
    dataset = _ramp_project(tmp_path / "p")
    other = _boxes(tmp_path / "other.csv", [("elsewhere/r0.wav", 0.1, 0.11)])
    args = argparse.Namespace(segments=other, context_ms=None)
    with pytest.raises(DatasetError, match="no box of .* belongs to a recording"):
        selection_from_args(args, dataset.paths)
    with pytest.raises(DatasetError, match="--context-ms is for per-call runs"):
        selection_from_args(argparse.Namespace(segments=None, context_ms=3.0), dataset.paths)
    mixed = _boxes(tmp_path / "mixed.csv", [("r0.wav", 0.1, 0.11), ("elsewhere.wav", 0.1, 0.11)])
    selection = selection_from_args(argparse.Namespace(segments=mixed, context_ms=None), dataset.paths)
    assert selection.context_s == 0.005 and set(selection.spans) == {"r0.wav", "elsewhere.wav"}
