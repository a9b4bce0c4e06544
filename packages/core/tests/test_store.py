import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from bat_core.dataset import Dataset
from bat_core.store import MANIFEST_COLUMNS, RepresentationStore, read_manifest
from bat_core.time_expansion import SignalConversion


@dataclass(frozen=True)
class ToyConfig:
    size: int = 3


def toy_store(dataset, config=ToyConfig()):
    return RepresentationStore(dataset.paths, "toy", dataset.paths.tokens_dir / "toy", config,
                               file_pattern="toy_{stem}.npy", model_id="toy-model")


CONVERSION = SignalConversion(250_000, 5.0, 48_000, 120_000.0, 0.01, False)


def run(dataset, store, fail=()):
    todo = store.begin(list(dataset))
    for item in todo:
        if item.file_name in fail:
            store.fail(item, "broken on purpose")
        else:
            store.write(item, np.arange(4, dtype=np.int16), frames_per_second=100.0, seconds=0.04,
                        conversion=CONVERSION, extras={"runs": np.ones((2, 2))}, extra={"note": 1})
    return store.finish()


def test_outputs_manifest_and_accounting(demo_root):
    dataset = Dataset.from_root(demo_root)
    bad = dataset[1].file_name
    summary = run(dataset, toy_store(dataset), fail={bad})
    assert (summary.given, summary.done, summary.failed, summary.skipped) == (6, 5, 1, 0)
    assert summary.failures == [(bad, "broken on purpose")]
    manifest = read_manifest(dataset.paths.manifest_path("toy"))
    assert list(manifest.columns) == MANIFEST_COLUMNS and len(manifest) == 6
    ok = manifest[manifest.status == "ok"].iloc[0]
    assert ok.output_path.startswith("tokens/toy/toy_") and json.loads(ok["shape"]) == [4]
    assert ok["dtype"] == "int16" and ok.frames_per_second == 100.0 and ok.time_expansion == 5.0
    assert ok.original_sample_rate == 250_000 and ok.model_id == "toy-model"
    assert json.loads(ok.package_versions)["bat-core"] != "absent"
    assert json.loads(ok.extra) == {"note": 1}
    out = dataset.paths.derived / ok.output_path
    np.testing.assert_array_equal(np.load(out), np.arange(4))
    assert out.with_name(out.name.replace(".npy", ".runs.npy")).is_file()
    assert manifest[manifest.status == "failed"].reason.tolist() == ["broken on purpose"]
    assert not list(dataset.paths.derived.rglob("*.tmp")), "no temporary files left behind"
    assert summary.band_warnings == 0 and "spectrum" not in summary.line()


def test_summary_counts_files_that_lost_their_band(demo_root):
    dataset = Dataset.from_root(demo_root)
    store = toy_store(dataset)
    lossy = SignalConversion(250_000, 1.0, 16_000, 8_000.0, 0.97, True)
    for index, item in enumerate(store.begin(list(dataset))):
        store.write(item, np.zeros(2), conversion=lossy if index < 2 else CONVERSION)
    summary = store.finish()
    assert summary.band_warnings == 2 and "2 lost part of their spectrum" in summary.line()


def test_rerun_skips_done_and_retries_failed(demo_root):
    dataset = Dataset.from_root(demo_root)
    run(dataset, toy_store(dataset), fail={dataset[0].file_name})
    again = run(dataset, toy_store(dataset))
    assert (again.done, again.skipped, again.failed) == (1, 5, 0)
    assert set(read_manifest(dataset.paths.manifest_path("toy")).status) == {"ok"}


def test_changed_config_file_or_missing_output_is_redone(demo_root):
    dataset = Dataset.from_root(demo_root)
    run(dataset, toy_store(dataset))
    assert run(dataset, toy_store(dataset, ToyConfig(size=4))).done == 6
    store = toy_store(dataset, ToyConfig(size=4))
    store.output_path(dataset[2]).unlink()
    dataset[3].path.write_bytes(dataset[3].path.read_bytes() + b"\x00\x00")
    assert run(dataset, store).done == 2


def test_overwrite_redoes_everything(demo_root):
    dataset = Dataset.from_root(demo_root)
    run(dataset, toy_store(dataset))
    store = toy_store(dataset)
    todo = store.begin(list(dataset), overwrite=True)
    assert len(todo) == 6
    for item in todo:
        store.write(item, np.zeros(2, np.int16))
    assert store.finish().done == 6


def test_crashed_run_keeps_rows_already_written(demo_root):
    dataset = Dataset.from_root(demo_root)
    store = toy_store(dataset)
    todo = store.begin(list(dataset))
    store.write(todo[0], np.zeros(3, np.int16))
    store.write(todo[1], np.zeros(3, np.int16))
    del store  # crash: journal never folded by finish()
    resumed = toy_store(dataset)
    assert len(resumed.read_manifest()) == 2
    todo = resumed.begin(list(dataset))
    assert len(todo) == 4
    for item in todo:
        resumed.fail(item, "still broken")
    summary = resumed.finish()
    assert (summary.skipped, summary.failed) == (2, 4)


def test_rows_of_other_subsets_are_kept(demo_root):
    dataset = Dataset.from_root(demo_root)
    run(dataset.select(limit=2), toy_store(dataset))
    run(dataset[2:], toy_store(dataset))
    manifest = read_manifest(dataset.paths.manifest_path("toy"))
    assert sorted(manifest.file_name) == sorted(item.file_name for item in dataset)
    assert isinstance(manifest, pd.DataFrame)


def test_writing_before_begin_is_an_error(demo_root):
    dataset = Dataset.from_root(demo_root)
    with pytest.raises(RuntimeError, match="begin"):
        toy_store(dataset).write(dataset[0], np.zeros(1))
