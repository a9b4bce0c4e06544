"""``--engine ray`` against the local engine, on a local Ray of 2 CPUs started once for this module.

Same results (integers equal, floats within 1e-5, manifest rows equal but for their time stamps), a bad
file is a failed row, a killed worker is survived, a killed driver's run is finished by the rerun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="bat-core[ray] is not installed")

from bat_core.dataset import Dataset  # noqa: E402
from bat_core.mels import MelConfig, compute_mels, mel_prepare  # noqa: E402
from bat_core.ray_engine import RayOptions  # noqa: E402
from bat_core.runner import AppendOutputs, RunOptions, run_to_store  # noqa: E402
from bat_core.store import RepresentationStore, read_manifest  # noqa: E402
from bat_core.testing import add_bad_files, make_demo_project, make_tiny_ast, make_tiny_speech_encoder  # noqa: E402

LOCAL = RunOptions(workers=1, show_progress=False)
RAY = replace(LOCAL, ray=RayOptions(workers=2))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = make_demo_project(tmp_path_factory.mktemp("ray") / "project", n_files=6)
    add_bad_files(root)
    return root


def datasets(project: Path, tmp_path: Path) -> tuple[Dataset, Dataset]:
    return Dataset.from_root(project, tmp_path / "local"), Dataset.from_root(project, tmp_path / "ray")


def assert_same(local: Dataset, other: Dataset, representation: str) -> pd.DataFrame:
    """Same rows (but created_at) and the same arrays, file for file."""
    a = read_manifest(local.paths.manifest_path(representation)).sort_values("file_name").reset_index(drop=True)
    b = read_manifest(other.paths.manifest_path(representation)).sort_values("file_name").reset_index(drop=True)
    assert len(a) == len(b) == len(local)
    pd.testing.assert_frame_equal(a.drop(columns="created_at"), b.drop(columns="created_at"))
    for row in a[a.status == "ok"].itertuples():
        for suffix in ["", *json.loads(row.extras)]:
            name = row.output_path if not suffix else row.output_path[: -len(".npy")] + f".{suffix}.npy"
            x, y = np.load(local.paths.derived / name), np.load(other.paths.derived / name)
            assert x.dtype == y.dtype and x.shape == y.shape, name
            if np.issubdtype(x.dtype, np.floating):
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(x, y, err_msg=name)
    assert not list(other.paths.manifests_dir.glob("*.journal.jsonl")), "every actor's journal was folded"
    return a


def test_mels_and_segments_are_the_local_engine_s(project, tmp_path):
    from bat_core.segments import DetectorParams, segment_project, segments_path

    local, other = datasets(project, tmp_path)
    summary = compute_mels(other, MelConfig(), options=RAY)
    assert (summary.done, summary.failed) == (7, 6) and summary.accounted
    compute_mels(local, MelConfig(), options=LOCAL)
    manifest = assert_same(local, other, "mels_48k")
    assert set(manifest[manifest.status == "failed"].file_name) == {n for n in manifest.file_name if n.startswith("bad_")}
    assert compute_mels(other, MelConfig(), options=RAY).skipped == 7, "a rerun skips what is done"
    streamed = Dataset.from_root(project, tmp_path / "streamed")  # every file past the row cap: decoded in the actor
    compute_mels(streamed, MelConfig(), options=replace(RAY, max_memory_mb=0))
    assert_same(local, streamed, "mels_48k")

    segment_project(local, DetectorParams(), options=LOCAL)
    segment_project(other, DetectorParams(), options=RAY)
    assert_same(local, other, next(local.paths.manifests_dir.glob("segments_*.parquet")).stem)
    pd.testing.assert_frame_equal(pd.read_parquet(segments_path(local.paths)), pd.read_parquet(segments_path(other.paths)))


def test_w2v_ast_and_vqvae_are_the_local_engine_s(project, tmp_path):
    pytest.importorskip("bat_w2v_kmeans")
    pytest.importorskip("bat_ast_embed")
    pytest.importorskip("bat_vqvae")
    from bat_ast_embed import ASTEmbedder, EmbedConfig, embed_dataset
    from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, train
    from bat_vqvae import encode_dataset as vq_encode
    from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer
    from bat_w2v_kmeans import encode_dataset as w2v_encode

    local, other = datasets(project, tmp_path)
    encoder = SpeechEncoder.from_pretrained(make_tiny_speech_encoder(tmp_path / "w2v"), device="cpu")
    on_ray = W2VKMeansTokenizer(encoder).fit(other, k=16, max_fit_frames=3000, options=RAY)
    tokenizer = W2VKMeansTokenizer(encoder)
    here = tokenizer.fit(local, k=16, max_fit_frames=3000, options=LOCAL)
    # the workers' samples merge into the same sample (its frames within float rounding: other batches, threads)
    np.testing.assert_allclose(on_ray.centroids, here.centroids, rtol=0, atol=1e-5)
    assert (on_ray.info.files_done, sorted(on_ray.info.failed_files)) == (here.info.files_done, sorted(here.info.failed_files))
    for dataset, options in ((local, LOCAL), (other, RAY)):
        w2v_encode(dataset, tokenizer, options=options)
    assert_same(local, other, "w2v_kmeans")

    embedder = ASTEmbedder.from_pretrained(make_tiny_ast(tmp_path / "ast"), EmbedConfig(max_frames="auto"), device="cpu")
    for dataset, options in ((local, LOCAL), (other, RAY)):
        embed_dataset(dataset, embedder, options=options)
    assert_same(local, other, "ast")

    train(local, tmp_path / "vq", VQVAEConfig(hidden=8, codes=16, code_dim=4),
          TrainConfig(steps=4, batch_size=2, crop_frames=32, checkpoint_every=4, kmeans_init_vectors=200),
          device="cpu", options=LOCAL)
    vq = VQVAETokenizer.from_pretrained(tmp_path / "vq")
    for dataset, options in ((local, LOCAL), (other, RAY)):
        vq_encode(dataset, vq, "tiny", options=options)
    assert_same(local, other, "vqvae")


class DieOnce:
    """A prepare that kills its process the first time it meets ``victim`` (a decoder crash, the OOM killer)."""

    def __init__(self, prepare, victim: str, marker: Path, sleep_s: float = 0.0):
        self.prepare, self.victim, self.marker, self.sleep_s = prepare, victim, marker, sleep_s

    @property
    def piece_bytes(self) -> int:
        return self.prepare.piece_bytes

    def __call__(self, item):
        time.sleep(self.sleep_s)
        if item.file_name == self.victim and not self.marker.exists():
            self.marker.write_text("died")
            os._exit(9)
        yield from self.prepare(item)


def mel_run(dataset: Dataset, prepare, options: RunOptions):
    config = MelConfig()
    store = RepresentationStore(dataset.paths, "mels_48k", dataset.paths.derived / "mels_48k", config)
    return run_to_store(list(dataset), store, prepare, lambda item, output: AppendOutputs(output, fortran=True),
                        options=options)


def test_a_killed_worker_is_survived_and_every_file_is_done(project, tmp_path):
    dataset = Dataset.from_root(project, tmp_path / "derived")
    good = [item for item in dataset if not item.file_name.startswith("bad_")]
    marker = tmp_path / "died"
    summary = mel_run(Dataset(dataset.paths, good, dataset.label_columns), DieOnce(mel_prepare(MelConfig()), good[2].file_name, marker), RAY)
    assert marker.exists(), "the worker was killed"
    assert (summary.done, summary.failed) == (len(good), 0)
    manifest = read_manifest(dataset.paths.manifest_path("mels_48k"))
    assert (manifest.status == "ok").all() and len(manifest) == len(good)


DRIVER = """
import time
from dataclasses import replace
import ray
from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, mel_prepare
from bat_core.ray_engine import RayOptions
from bat_core.runner import AppendOutputs, RunOptions, run_to_store
from bat_core.store import RepresentationStore


class Slow:  # a second a file, so that the run is killed half way
    def __init__(self, prepare):
        self.prepare = prepare

    def __call__(self, item):
        time.sleep(1.0)
        yield from self.prepare(item)


ray.init(address={address!r}, log_to_driver=False)
dataset = Dataset.from_root({root!r}, {derived!r})
store = RepresentationStore(dataset.paths, "mels_48k", dataset.paths.derived / "mels_48k", MelConfig())
run_to_store(list(dataset), store, Slow(mel_prepare(MelConfig())), lambda item, output: AppendOutputs(output, fortran=True),
             options=RunOptions(show_progress=False, ray=RayOptions(workers=1, files_per_call=1)))
"""


def test_a_killed_driver_s_run_is_finished_by_the_rerun(project, tmp_path):
    derived = tmp_path / "derived"
    script = DRIVER.format(address=ray.get_runtime_context().gcs_address, root=str(project), derived=str(derived))
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journals = derived / "manifests"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        rows = sum(len(j.read_text().splitlines()) for j in journals.glob("mels_48k.ray-*.journal.jsonl"))
        if rows >= 3:
            break
        time.sleep(0.2)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(2)  # the cluster notices its driver is gone and stops the job's actors

    dataset = Dataset.from_root(project, derived)
    summary = compute_mels(dataset, MelConfig(), options=RAY)
    assert summary.skipped >= 3, "files the killed run finished are not redone"
    assert summary.skipped + summary.done + summary.failed == len(dataset) == 13
    manifest = read_manifest(dataset.paths.manifest_path("mels_48k"))
    assert len(manifest) == 13 and (manifest.status == "ok").sum() == 7


def test_cli_engine_options(project, tmp_path):
    from bat_core.cli import main

    assert main(["mels", "--root", str(project), "--derived", str(tmp_path / "d"), "--gpus-per-worker", "1"]) == 2
    assert main(["mels", "--root", str(project), "--derived", str(tmp_path / "d"), "--engine", "ray",
                 "--shard", "0/2"]) == 2
    assert main(["mels", "--root", str(project), "--derived", str(tmp_path / "d"), "--engine", "ray", "-q",
                 "--ray-workers", "1", "--limit", "3"]) == 0
    assert (read_manifest(Dataset.from_root(project, tmp_path / "d").paths.manifest_path("mels_48k")).status == "ok").all()


def test_an_unreachable_ray_address_exits_2_in_seconds(project, tmp_path):
    import socket

    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bat_core.cli", "mels", "--root", str(project), "--derived",
                           str(tmp_path / "d"), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"cannot reach the Ray cluster at --ray-address 127.0.0.1:{port}" in done.stderr
    assert time.perf_counter() - started < 60  # ray.init alone retries for minutes
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").rglob("*.npy"))


def test_a_derived_folder_a_node_cannot_see_exits_2(project, tmp_path, monkeypatch, capsys):
    """One node cannot be given another filesystem here: Ray's answer for every node is replaced by "not
    seen", and the command must refuse before any file is encoded, leaving no probe behind."""
    from bat_core.cli import main

    monkeypatch.setattr(ray, "get", lambda refs, **kwargs: [False] * len(refs) if isinstance(refs, list) else False)
    derived = tmp_path / "d"
    assert main(["mels", "--root", str(project), "--derived", str(derived), "--engine", "ray", "-q"]) == 2
    assert f"--derived {derived} is not visible (or not writable) on Ray node" in capsys.readouterr().err
    assert not list(derived.rglob(".ray-visible-*")) and not list(derived.rglob("*.npy"))


def test_the_pool_leaves_a_cpu_to_decode_beside_gpu_actors(monkeypatch, caplog):
    from bat_core.errors import BatError
    from bat_core.ray_engine import _actors

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 4.0, "GPU": 1.0})
    assert _actors(RayOptions(gpus_per_worker=1)) == 1
    assert _actors(RayOptions(gpus_per_worker=0.25)) == 3  # 4 actors of 1 CPU would leave none to decode: Ray waits
    assert "running 3" in caplog.text
    assert _actors(RayOptions()) == 4  # without GPUs each actor decodes its own files
    assert _actors(RayOptions(workers=6)) == 6 and "Ray waits until more join" in caplog.text  # autoscaling may add
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 1.0, "GPU": 1.0})
    with pytest.raises(BatError, match="not enough for one actor"):
        _actors(RayOptions(gpus_per_worker=1))


def test_actor_calls_get_alike_files_largest_first(tmp_path):
    """An actor's call flushes its batcher: files of alike length side by side share batches (6x fewer forwards
    on an H200's run of the demo cycled, tools/bench/ray_engine.py --mode batches)."""
    from bat_core.dataset import DatasetItem
    from bat_core.ray_engine import call_order

    items = []
    for name, size in [("a", 10), ("b", 3000), ("c", 500), ("d", 3000), ("e", None), ("f", 12)]:
        path = tmp_path / f"{name}.wav"
        if size is not None:
            path.write_bytes(b"x" * size)
        items.append(DatasetItem(path.name, path))
    assert [item.file_name for item in call_order(items)] == ["b.wav", "d.wav", "c.wav", "f.wav", "a.wav", "e.wav"]


def test_w2v_run_on_ray_fits_on_the_workers_then_encodes(project, tmp_path):
    pytest.importorskip("bat_w2v_kmeans")
    from bat_w2v_kmeans.cli import main

    model = make_tiny_speech_encoder(tmp_path / "w2v")
    derived = tmp_path / "derived"
    assert main(["run", "--root", str(project), "--derived", str(derived), "--model", str(model), "--k", "8",
                 "--engine", "ray", "--ray-workers", "2", "-q"]) == 1  # the bad files fail, the rest are tokens
    manifest = read_manifest(Dataset.from_root(project, derived).paths.manifest_path("w2v_kmeans"))
    assert (manifest.status == "ok").sum() == 7 and len(manifest) == 13
    assert not (derived / "cache").exists() or not any((derived / "cache").rglob("*.npy")), "no frame cache on Ray"
