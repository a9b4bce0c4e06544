"""A dataset through the bat-core runner and store: what is written, what fails, what is redone."""

import json
import sys

import numpy as np
import pytest
import torch

import bat_ast_embed.embedder as embedder_module
from bat_ast_embed import ASTEmbedder, EmbedConfig, embed_dataset
from bat_core.audio import load_audio
from bat_core.dataset import Dataset
from bat_core.runner import RunOptions
from bat_core.store import read_manifest
from bat_core.testing import StrategyContract, make_tiny_ast, write_long_recording, write_project

INLINE = RunOptions(workers=0, show_progress=False)


def outputs(dataset: Dataset, representation: str = "ast") -> dict[str, dict[str, np.ndarray]]:
    """Every ok file's arrays by file name: {"": main, "mean": ..., "sequence": ...}."""
    manifest = read_manifest(dataset.paths.manifest_path(representation))
    found = {}
    for row in manifest[manifest.status == "ok"].to_dict(orient="records"):
        main = dataset.paths.derived / row["output_path"]
        arrays = {"": np.load(main)}
        for name in json.loads(row["extras"]):
            arrays[name] = np.load(main.with_name(main.name.replace(".npy", f".{name}.npy")))
        found[row["file_name"]] = arrays
    return found


def test_outputs_extras_and_their_manifest_row(tiny_ast, demo_root):
    dataset = Dataset.from_root(demo_root)
    model = ASTEmbedder.from_pretrained(tiny_ast, EmbedConfig(max_frames="auto", sequence=True, pool="both"), device="cpu")
    summary = embed_dataset(dataset, model, options=INLINE)
    assert (summary.given, summary.done, summary.failed) == (6, 6, 0)
    manifest = read_manifest(dataset.paths.manifest_path("ast"))
    row = manifest.iloc[0]
    vector = np.load(dataset.paths.derived / row["output_path"])
    assert row["output_path"].startswith("ast_features/ast_") and vector.shape == (32,) and vector.dtype == np.float32
    assert row["kind"] == "embedding" and json.loads(row["config"])["precision"] == "float32"
    assert json.loads(row["extras"]) == ["mean", "sequence"]
    base = dataset.paths.derived / row["output_path"]
    assert np.load(base.with_name(base.name.replace(".npy", ".mean.npy"))).shape == (32,)
    sequence = np.load(base.with_name(base.name.replace(".npy", ".sequence.npy")))
    extra = json.loads(row["extra"])
    assert extra["pool"] == "pooler" and extra["layer"] == -1
    assert extra["sequence_frames_per_second"] == pytest.approx(10 * 15)
    assert sequence.shape[0] == pytest.approx(row["seconds"] * extra["sequence_frames_per_second"], abs=3)
    assert row["time_expansion"] == 15 and row["model_id"] == str(tiny_ast)


@pytest.fixture(scope="module")
def long_project(tmp_path_factory):
    """Clips of several lengths at two rates, one spanning many windows and many read blocks."""
    root = tmp_path_factory.mktemp("long_project")
    rng = np.random.default_rng(3)
    recordings = {f"short_{i}.wav": ((0.1 * rng.standard_normal(int(seconds * 250_000))).astype(np.float32), 250_000)
                  for i, seconds in enumerate((0.001, 0.02, 0.13))}
    write_project(root, recordings)
    write_long_recording(root / "data" / "audio" / "long.wav", 1.3, sample_rate=384_000)  # ~20 s of model audio
    with open(root / "data" / "annotations.csv", "a", encoding="utf-8") as handle:
        handle.write("long.wav\n")
    return root


@pytest.mark.parametrize("max_frames", [None, "auto"])
def test_streamed_runner_equals_in_memory_embed(tiny_ast, long_project, tmp_path, max_frames):
    dataset = Dataset.from_root(long_project, derived=tmp_path / "derived")
    model = ASTEmbedder.from_pretrained(tiny_ast, EmbedConfig(max_frames=max_frames, sequence=True, pool="both"), device="cpu")
    summary = embed_dataset(dataset, model, batch_size=4, options=INLINE)
    assert summary.done == 4
    written = outputs(dataset)
    manifest = read_manifest(dataset.paths.manifest_path("ast")).set_index("file_name")
    for item in dataset:
        recording = load_audio(item.path)
        in_memory = model.embed(recording.samples, recording.sample_rate)
        arrays = written[item.file_name]
        np.testing.assert_allclose(arrays[""], in_memory.pooler, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(arrays["mean"], in_memory.mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(arrays["sequence"], in_memory.sequence, rtol=1e-5, atol=1e-6)
        assert json.loads(manifest.loc[item.file_name, "extra"])["run_frames"] == in_memory.run_frames
    assert written["long.wav"]["sequence"].shape[0] > 100
    assert len(json.loads(manifest.loc["long.wav", "extra"])["run_frames"]) > 10  # many windows, averaged


def test_worker_processes_give_the_outputs_of_inline_decoding(tiny_ast, long_project, tmp_path):
    model = ASTEmbedder.from_pretrained(tiny_ast, EmbedConfig(max_frames="auto", sequence=True), device="cpu")
    results = {}
    for workers in (0, 2):
        dataset = Dataset.from_root(long_project, derived=tmp_path / f"workers_{workers}")
        summary = embed_dataset(dataset, model, options=RunOptions(workers=workers, show_progress=False))
        assert summary.done == 4
        results[workers] = outputs(dataset)
    assert results[0].keys() == results[2].keys()
    for name, arrays in results[0].items():
        for suffix, array in arrays.items():
            np.testing.assert_array_equal(results[2][name][suffix], array)


class Poisoned:
    """An encoder that fails on any batch holding a piece of one file (as a bad window would)."""

    def __init__(self, encoder, file_index: int):
        self.encoder, self.file_index = encoder, file_index
        self.max_items, self.max_length = encoder.max_items, encoder.max_length

    def __call__(self, batch):
        if any(piece.file == self.file_index for piece in batch):
            raise RuntimeError("poisoned window")
        return self.encoder(batch)


def test_a_file_the_model_fails_on_fails_alone(tiny_ast, tmp_path, monkeypatch, clip):
    root = write_project(tmp_path / "eight", {f"call_{i}.wav": (clip(0.02 + 0.01 * (i % 3), seed=i), 250_000) for i in range(8)})
    dataset = Dataset.from_root(root)
    model = ASTEmbedder.from_pretrained(tiny_ast, device="cpu")  # fixed length: every window shares one batch length
    encoder = model.encoder
    monkeypatch.setattr(model, "encoder", lambda batch_size=8, keep_sequence=None: Poisoned(encoder(batch_size, keep_sequence), 3))
    summary = embed_dataset(dataset, model, batch_size=4, options=INLINE)
    assert (summary.done, summary.failed) == (7, 1)
    (name, reason), = summary.failures
    assert name == dataset[3].file_name and "poisoned window" in reason
    manifest = read_manifest(dataset.paths.manifest_path("ast"))
    assert sorted(manifest[manifest.status == "ok"].file_name) == sorted(item.file_name for i, item in enumerate(dataset) if i != 3)


def test_precision_and_weights_are_part_of_the_configuration(tiny_ast, other_tiny_ast, demo_root, monkeypatch):
    dataset = Dataset.from_root(demo_root)
    config = EmbedConfig(max_frames="auto")
    first = embed_dataset(dataset, ASTEmbedder.from_pretrained(tiny_ast, config, device="cpu"), options=INLINE)
    assert first.done == 6
    with monkeypatch.context() as patched:  # this CPU may lack native bf16; fp16 shows the same thing
        patched.setattr(embedder_module, "compute_dtype", lambda device, precision: torch.float16)
        half = embed_dataset(dataset, ASTEmbedder.from_pretrained(tiny_ast, config, device="cpu", precision="fp16"), options=INLINE)
    assert (half.done, half.stale, half.stale_keys) == (6, 6, ["precision"])
    other = embed_dataset(dataset, ASTEmbedder.from_pretrained(other_tiny_ast, config, device="cpu"), options=INLINE)
    assert (other.done, other.stale) == (6, 6) and other.stale_keys == ["precision", "weights"]
    same = embed_dataset(dataset, ASTEmbedder.from_pretrained(other_tiny_ast, config, device="cpu"), options=INLINE)
    assert (same.skipped, same.done) == (6, 0)


def test_tags_live_side_by_side_and_shards_fold_into_one_manifest(tiny_ast, demo_root):
    dataset = Dataset.from_root(demo_root)
    model = ASTEmbedder.from_pretrained(tiny_ast, EmbedConfig(max_frames="auto"), device="cpu")
    whole = embed_dataset(dataset, model, options=INLINE)
    halves = [embed_dataset(dataset, model, options=INLINE, shard=(index, 2), tag="halves") for index in range(2)]
    assert whole.done == 6 and sum(half.done for half in halves) == 6 and all(half.done for half in halves)
    tagged = read_manifest(dataset.paths.manifest_path("ast-halves"))
    assert len(tagged) == 6 and set(tagged.status) == {"ok"}
    assert all(path.startswith("ast_features/ast-halves/ast_") for path in tagged.output_path)
    default, by_shard = outputs(dataset), outputs(dataset, "ast-halves")
    assert default.keys() == by_shard.keys()
    for name in default:
        np.testing.assert_allclose(by_shard[name][""], default[name][""], rtol=1e-5, atol=1e-6)


PEAK_RSS = """
import sys
from bat_ast_embed import ASTEmbedder, EmbedConfig, embed_dataset
from bat_core.dataset import Dataset
from bat_core.runner import RunOptions
root, model, derived = sys.argv[1:4]
embedder = ASTEmbedder.from_pretrained(model, EmbedConfig(max_frames="auto", sequence=True, pool="both"), device="cpu")
summary = embed_dataset(Dataset.from_root(root, derived=derived), embedder, options=RunOptions(workers=0, show_progress=False))
assert summary.done == 1, summary.line()
from bat_core.testing import peak_rss_mb
print(int(peak_rss_mb()))
"""


def test_peak_memory_does_not_grow_with_the_recording(tiny_ast, tmp_path):
    """An 8 s recording at 384 kHz (2 minutes of model audio) takes no more memory than a 1 s one."""
    import subprocess
    import sys

    peaks = {}
    for seconds in (1, 8):
        root = write_project(tmp_path / f"project_{seconds}", {})
        write_long_recording(root / "data" / "audio" / "long.wav", seconds)
        (root / "data" / "annotations.csv").write_text("File Name\nlong.wav\n", encoding="utf-8")
        done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(root), str(tiny_ast), str(tmp_path / f"derived_{seconds}")],
                              capture_output=True, text=True, check=True)
        peaks[seconds] = int(done.stdout.strip().splitlines()[-1])
    assert peaks[8] <= peaks[1] + 30, peaks  # MB; decoding and filterbank of the whole file would add about 80


class TestEmbedContract(StrategyContract):
    """bat-core's strategy contract: bad files, resume, manifest rows, kill -9 then rerun."""

    representation = "ast"
    time_axis = None  # one vector per file

    def model(self, models):
        if not (models / "tiny" / "config.json").is_file():
            make_tiny_ast(models / "tiny")
        return models / "tiny"

    def run_strategy(self, root, models, workers=0, overwrite=False):
        embedder = ASTEmbedder.from_pretrained(self.model(models), EmbedConfig(max_frames="auto"), device="cpu")
        return embed_dataset(Dataset.from_root(root), embedder, overwrite=overwrite,
                             options=RunOptions(workers=workers, show_progress=False))

    def command(self, root, models):
        return [sys.executable, "-m", "bat_ast_embed.cli", "embed", "--root", str(root), "--model", str(self.model(models)),
                "--max-frames", "auto", "--device", "cpu", "-q", "--num-workers", "1"]
