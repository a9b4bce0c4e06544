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
    store._close_journal()  # crash: the journal is never folded by finish(), the process's lock goes with it
    store._lock.release()
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


def test_stale_outputs_are_counted_and_the_changed_settings_named(demo_root):
    dataset = Dataset.from_root(demo_root)
    run(dataset, toy_store(dataset, {"size": 3, "precision": "fp32", "model": {"layer": 6}}))
    summary = run(dataset, toy_store(dataset, {"size": 3, "precision": "bf16", "model": {"layer": 9}}))
    assert (summary.done, summary.stale) == (6, 6)
    assert summary.stale_keys == ["model.layer", "precision"]
    assert "6 redone because their earlier outputs were stale (changed: model.layer, precision)" in summary.line()


def test_a_round_one_manifest_and_journal_are_read(demo_root):
    dataset = Dataset.from_root(demo_root)
    run(dataset.select(limit=2), toy_store(dataset))
    path = dataset.paths.manifest_path("toy")
    old = pd.read_parquet(path).drop(columns=["kind", "codebook_size", "extras", "schema_version"])
    old.to_parquet(path, index=False)
    legacy_row = {**old.iloc[0].to_dict(), "file_name": dataset[2].file_name, "status": "failed", "reason": "old"}
    (path.parent / "toy.journal.jsonl").write_text(json.dumps(legacy_row, default=str) + "\n")
    store = toy_store(dataset)
    manifest = store.read_manifest()
    assert list(manifest.columns) == MANIFEST_COLUMNS and set(manifest.schema_version) == {1}
    summary = run(dataset, store)
    assert (summary.skipped, summary.done) == (2, 4)
    assert not (path.parent / "toy.journal.jsonl").exists()
    assert set(read_manifest(path).schema_version) == {1, 2}


def test_a_file_that_now_fails_loses_its_earlier_output(demo_root):
    dataset = Dataset.from_root(demo_root)
    run(dataset, toy_store(dataset))
    out = toy_store(dataset).output_path(dataset[0])
    assert out.is_file()
    dataset[0].path.write_bytes(dataset[0].path.read_bytes() + b"\x00\x00")  # changed: redone, and now it fails
    summary = run(dataset, toy_store(dataset), fail={dataset[0].file_name})
    assert summary.failed == 1 and not out.exists() and not out.with_name(out.stem + ".runs.npy").exists()


def test_growing_outputs_have_the_final_shape_and_order(demo_root):
    dataset = Dataset.from_root(demo_root)
    store = toy_store(dataset)
    store.begin(list(dataset)[:1])
    output = store.open(dataset[0])
    frames = np.arange(30, dtype=np.float32).reshape(10, 3)  # (t, n) blocks of a (n, T) spectrogram
    output.append(frames[:4], fortran=True)
    output.append(frames[4:], fortran=True)
    output.append(np.arange(5, dtype=np.int16), "runs")
    store.commit(output, frames_per_second=1.0)
    store.finish()
    saved = np.load(store.output_path(dataset[0]))
    assert saved.shape == (3, 10) and saved.flags.f_contiguous
    np.testing.assert_array_equal(saved, frames.T)
    np.testing.assert_array_equal(np.load(store.output_path(dataset[0], "runs")), np.arange(5))


def test_non_finite_outputs_are_refused(demo_root):
    from bat_core.errors import NonFiniteError

    dataset = Dataset.from_root(demo_root)
    store = toy_store(dataset)
    store.begin(list(dataset)[:1])
    with pytest.raises(NonFiniteError, match="1 NaN/inf"):
        store.write(dataset[0], np.array([0.0, np.inf]))
    assert not list(store.output_dir.glob("*.npy")) and not list(store.output_dir.glob(".*.tmp"))
    store.fail(dataset[0], "non-finite")
    store.finish()


def _foreign_lock(directory, representation, writer="main"):
    """A lock held by another live process (a sleeping child), as a second writer would find it."""
    import socket
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{representation}.{writer}.lock").write_text(json.dumps(
        {"pid": child.pid, "host": socket.gethostname(), "command": "bat-core mels --root elsewhere",
         "started": "earlier", "heartbeat": time.time()}))
    return child


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over(demo_root):
    from bat_core.errors import LockedError

    dataset = Dataset.from_root(demo_root)
    child = _foreign_lock(dataset.paths.manifests_dir, "toy")
    try:
        with pytest.raises(LockedError, match=f"being written by pid {child.pid}.*bat-core mels --root elsewhere"):
            toy_store(dataset).begin(list(dataset))
    finally:
        child.kill()
        child.wait()
    assert run(dataset, toy_store(dataset)).done == 6  # its process is gone: the lock is stale
    assert not list(dataset.paths.manifests_dir.glob("toy.*.lock")), "released at the end"


def test_shards_of_one_run_write_together_and_fold_into_one_manifest(demo_root):
    from bat_core.errors import LockedError

    dataset = Dataset.from_root(demo_root)
    shards = [RepresentationStore(dataset.paths, "toy", dataset.paths.tokens_dir / "toy", ToyConfig(),
                                  file_pattern="toy_{stem}.npy", shard=(i, 3)) for i in range(3)]
    todos = [store.begin(list(dataset.select(shard=(i, 3)))) for i, store in enumerate(shards)]  # all live at once
    with pytest.raises(LockedError):  # an unsharded writer, or shards of another N, would collide with them
        toy_store(dataset).begin(list(dataset))
    with pytest.raises(LockedError):
        RepresentationStore(dataset.paths, "toy", dataset.paths.tokens_dir / "toy", ToyConfig(), shard=(0, 2)).begin([])
    for store, todo in zip(shards, todos):
        for item in todo:
            store.write(item, np.zeros(2, np.int16))
    journals = sorted(p.name for p in dataset.paths.manifests_dir.glob("toy.*.journal.jsonl"))
    assert journals == [f"toy.shard-{i}-of-3.journal.jsonl" for i in range(3)]  # one journal per writer
    for store in shards:
        store.finish()
    manifest = read_manifest(dataset.paths.manifest_path("toy"))
    assert sorted(manifest.file_name) == sorted(item.file_name for item in dataset)
    assert run(dataset, toy_store(dataset)).skipped == 6


def test_a_suspended_writer_keeps_its_lock_and_a_sharded_store_takes_only_its_shard(demo_root):
    import time

    from bat_core.errors import LockedError

    dataset = Dataset.from_root(demo_root)
    child = _foreign_lock(dataset.paths.manifests_dir, "toy")
    lock = dataset.paths.manifests_dir / "toy.main.lock"
    holder = json.loads(lock.read_text())
    lock.write_text(json.dumps({**holder, "heartbeat": time.time() - 3600}))  # stopped (SIGSTOP) for an hour, alive
    try:
        with pytest.raises(LockedError):
            toy_store(dataset).begin(list(dataset))
    finally:
        child.kill()
        child.wait()
    store = RepresentationStore(dataset.paths, "toy", dataset.paths.tokens_dir / "toy", ToyConfig(), shard=(1, 2))
    todo = store.begin(list(dataset))  # given every file, a shard's store keeps its own
    assert {item.file_name for item in todo} == {item.file_name for item in dataset.select(shard=(1, 2))}
    for item in todo:
        store.write(item, np.zeros(2, np.int16))
    assert store.finish().given == len(todo)


def test_temporaries_of_another_host_are_left_alone(demo_root):
    dataset = Dataset.from_root(demo_root)
    store = toy_store(dataset)
    store.output_dir.mkdir(parents=True)
    theirs = store.output_dir / ".toy_x.npy.0badc0de-1.tmp"  # pid 1 is alive... on their host, not here
    dead_here = store.output_dir / f".toy_y.npy.{__import__('bat_core.locks', fromlist=['host_tag']).host_tag()}-999999.tmp"
    theirs.write_bytes(b"x")
    dead_here.write_bytes(b"x")
    run(dataset, store)
    assert theirs.exists() and not dead_here.exists()
