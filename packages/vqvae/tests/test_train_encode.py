import csv
import json
import shutil
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bat_core.dataset import Dataset
from bat_core.errors import BatError, ConfigMismatchError, ModelNotFoundError
from bat_core.mels import MelConfig
from bat_core.runner import RunOptions
from bat_core.store import read_manifest
from bat_core.testing import StrategyContract, add_bad_files
from bat_core.time_expansion import TimeExpansion
from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, encode_dataset, mel_windows, train

# tiny settings: a training takes a few seconds on CPU
TINY_MEL = MelConfig(n_mels=32)
TINY_MODEL = VQVAEConfig(n_mels=32, hidden=16, codes=16, code_dim=8)
TINY_TRAIN = TrainConfig(steps=6, batch_size=4, crop_frames=32, checkpoint_every=3, log_every=2,
                         kmeans_init_vectors=512, kmeans_iters=5, holdout_fraction=0.2)
INLINE = RunOptions(workers=0, show_progress=False)


def tiny_train(root, model_dir, train_config=TINY_TRAIN, mel_config=TINY_MEL, dataset=None, **kwargs):
    return train(dataset or Dataset.from_root(root), model_dir, TINY_MODEL, train_config, mel_config, device="cpu",
                 options=INLINE, **kwargs)


def model_dir_of(root):
    return root / "derived" / "models" / "vqvae"


def stored_mel(root, item):
    return np.load(root / "derived" / TINY_MEL.representation / f"{item.stem}.npy")


def small_windows(monkeypatch, window=64, overlap=16):
    monkeypatch.setattr(mel_windows, "ENCODE_CHUNK_FRAMES", window)
    monkeypatch.setattr(mel_windows, "CHUNK_OVERLAP_FRAMES", overlap)


@pytest.fixture(scope="module")
def trained_project(demo_template, tmp_path_factory):
    """The demo corpus with a tiny model trained in derived/models/vqvae (once per module; read-only by
    convention: a test that changes files takes ``trained_root``)."""
    root = tmp_path_factory.mktemp("trained") / "project"
    shutil.copytree(demo_template / "data", root / "data")
    tiny_train(root, model_dir_of(root))
    return root


@pytest.fixture
def trained_root(trained_project, tmp_path):
    """A changeable copy of ``trained_project`` (recordings, mels and model)."""
    root = tmp_path / "trained"
    shutil.copytree(trained_project, root)
    return root


# -- training --------------------------------------------------------------------------------------
def test_train_saves_artefact_log_and_checkpoints(trained_project):
    model_dir = model_dir_of(trained_project)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model"]["codes"] == 16 and config["mel"]["n_mels"] == 32 and config["trained_steps"] == 6
    assert config["failed_files"] == {} and config["training_files"] == 5 and len(config["holdout_files"]) == 1
    assert config["data"]["files"] == 6 and len(config["data"]["fingerprint"]) == 16
    assert 0 < config["holdout"]["usage"] <= 1 and config["holdout"]["perplexity"] >= 1 and config["holdout"]["mse"] > 0
    assert not list(model_dir.rglob("*.pt")) and not list(model_dir.rglob("*.pkl")), "no pickle"
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["step_0000003", "step_0000006"]
    with open(model_dir / "train_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert all(0 < float(r["batch_usage"]) <= 1 and float(r["batch_perplexity"]) >= 1 for r in rows)


def test_seeded_training_is_deterministic_and_resume_matches_uninterrupted(trained_project, trained_root, tmp_path):
    tiny_train(trained_root, tmp_path / "again")
    tiny_train(trained_root, tmp_path / "resumed", replace(TINY_TRAIN, steps=3))
    tiny_train(trained_root, tmp_path / "resumed", resume=True)
    full = load_file(str(model_dir_of(trained_project) / "model.safetensors"))
    for other in ("again", "resumed"):
        weights = load_file(str(tmp_path / other / "model.safetensors"))
        for name, tensor in full.items():
            assert torch.equal(tensor, weights[name]), f"{other}: {name} differs"
    with open(tmp_path / "resumed" / "train_log.csv") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [2, 3, 4, 6]  # 3: end of the short run


def test_resume_refuses_other_settings_data_mels_or_time_expansion(trained_root, tmp_path):
    model_dir = tmp_path / "m"
    tiny_train(trained_root, model_dir, replace(TINY_TRAIN, steps=3))
    with pytest.raises(ConfigMismatchError, match="other training settings .*lr 0.0003 there, 0.01 now"):
        tiny_train(trained_root, model_dir, replace(TINY_TRAIN, lr=1e-2), resume=True)
    with pytest.raises(ConfigMismatchError, match="other mel settings .*fmin 500.0 there, 1000.0 now"):
        tiny_train(trained_root, model_dir, mel_config=replace(TINY_MEL, fmin=1000.0), resume=True)
    with pytest.raises(ConfigMismatchError, match="other time expansion"):
        tiny_train(trained_root, model_dir, mel_config=replace(TINY_MEL, time_expansion=TimeExpansion(factor=3)),
                   resume=True)
    fewer = Dataset.from_root(trained_root).select(limit=5)
    with pytest.raises(ConfigMismatchError, match="trained on other data .*6 files.*5 files"):
        tiny_train(trained_root, model_dir, dataset=fewer, resume=True)
    assert json.loads((model_dir / "config.json").read_text())["trained_steps"] == 3, "nothing replaced"


def test_a_trained_model_is_replaced_only_with_overwrite(trained_root, monkeypatch):
    from bat_vqvae.holdout import ScoreEncoder

    model_dir = model_dir_of(trained_root)
    before = (model_dir / "model.safetensors").read_bytes()
    with pytest.raises(BatError, match="already holds a trained VQ-VAE: pass --overwrite"):
        tiny_train(trained_root, model_dir, replace(TINY_TRAIN, seed=1))
    assert (model_dir / "model.safetensors").read_bytes() == before

    windows = []  # the hold-out pass streams windows through the runner, never a whole file
    original = ScoreEncoder.__call__
    monkeypatch.setattr(ScoreEncoder, "__call__", lambda self, batch: windows.extend(p.length for p in batch)
                        or original(self, batch))
    small_windows(monkeypatch)
    result = tiny_train(trained_root, model_dir, replace(TINY_TRAIN, seed=1, checkpoint_every=6), overwrite=True)
    assert (model_dir / "model.safetensors").read_bytes() != before
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["step_0000006"], "old run's checkpoints gone"
    assert max(windows) <= 64 and len(windows) > len(result.holdout_files)


def test_bad_files_are_listed_and_recorded_and_the_rest_trains(demo_root, tmp_path):
    expected = add_bad_files(demo_root)
    result = tiny_train(demo_root, tmp_path / "model")
    assert set(result.failed) == set(expected) and result.given == 6 + len(expected) + 1
    assert len(result.training_files) + len(result.holdout_files) == 7  # the demo files and the stereo one
    for name, text in expected.items():
        assert text in result.failed[name]
    assert "beyond" in result.failed["bad_absurd.wav"], "a 1e30 sample fails the file at decoding"
    assert f"{len(expected)} failed (bad_absurd.wav, " in result.line()
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert set(config["failed_files"]) == set(expected)

    summary = encode_dataset(Dataset.from_root(demo_root), VQVAETokenizer.from_pretrained(tmp_path / "model"), "tiny",
                             options=INLINE)
    assert (summary.given, summary.done, summary.failed) == (6 + len(expected) + 1, 7, len(expected))
    for name, text in expected.items():
        assert text in dict(summary.failures)[name]


def test_a_non_finite_loss_stops_training_naming_its_files_and_saves_nothing(trained_root, tmp_path, monkeypatch):
    import bat_vqvae.training as training
    from bat_vqvae.guard import NonFiniteLossError

    poisoned = Dataset.from_root(trained_root)[0].file_name
    armed = []
    original_crops, original_init = training.random_crops, training.initialise_codebook

    def crops(files, *args, **kwargs):
        batch = original_crops(files, *args, **kwargs)
        for row, index in enumerate(batch.files):
            if armed and files[index].path.stem == poisoned.rsplit(".", 1)[0]:
                batch.data[row, :, 3] = 1e30  # what a recording with a 1e30 sample would give
        return batch

    def initialise(*args, **kwargs):
        original_init(*args, **kwargs)
        armed.append(True)  # poison the training steps, not the codebook start

    monkeypatch.setattr(training, "random_crops", crops)
    monkeypatch.setattr(training, "initialise_codebook", initialise)
    model_dir = tmp_path / "model"
    with pytest.raises(NonFiniteLossError, match=rf"the loss became (nan|inf) at step \d, on a batch cropped from .*{poisoned}"):
        tiny_train(trained_root, model_dir, replace(TINY_TRAIN, steps=12))
    assert not (model_dir / "model.safetensors").exists()
    for checkpoint in (model_dir / "checkpoints").glob("*/checkpoint.safetensors"):
        assert all(torch.isfinite(t).all() for t in load_file(str(checkpoint)).values()), "no NaN weights saved"


# -- the tokenizer ----------------------------------------------------------------------------------
def test_save_load_round_trip(trained_project, tmp_path):
    tokenizer = VQVAETokenizer.from_pretrained(model_dir_of(trained_project))
    mel = stored_mel(trained_project, Dataset.from_root(trained_project)[0])
    codes = tokenizer.encode(mel)
    assert codes.dtype == np.int16 and codes.shape == (-(-mel.shape[1] // 4), 8)
    tokenizer.save(tmp_path / "copy")
    again = VQVAETokenizer.from_pretrained(tmp_path / "copy")
    assert again.fingerprint == tokenizer.fingerprint
    np.testing.assert_array_equal(again.encode(mel), codes)
    decoded = again.decode(codes, n_frames=mel.shape[1])
    assert decoded.shape == mel.shape
    assert np.mean((decoded - mel) ** 2) < np.var(mel), "reconstruction beats predicting the mean"


def test_long_mels_are_encoded_in_windows_like_whole(trained_project, monkeypatch):
    tokenizer = VQVAETokenizer.from_pretrained(model_dir_of(trained_project))
    mel = stored_mel(trained_project, Dataset.from_root(trained_project)[0])
    whole = tokenizer.encode(mel)
    small_windows(monkeypatch)
    assert mel.shape[1] > 4 * 64
    np.testing.assert_array_equal(tokenizer.encode(mel), whole)


def test_waveform_api_matches_mel_api(trained_project):
    from bat_core.audio import load_audio

    tokenizer = VQVAETokenizer.from_pretrained(model_dir_of(trained_project))
    item = Dataset.from_root(trained_project)[0]
    recording = load_audio(item.path)
    np.testing.assert_array_equal(tokenizer.encode_waveform(recording.samples, recording.sample_rate),
                                  tokenizer.encode(stored_mel(trained_project, item)))


def test_missing_model_names_the_option(tmp_path):
    with pytest.raises(ModelNotFoundError, match="--model PATH"):
        VQVAETokenizer.from_pretrained(tmp_path / "nothing")


# -- encoding through the runner ---------------------------------------------------------------------
def test_runner_codes_equal_whole_mel_codes_on_files_longer_than_a_window(trained_root, monkeypatch):
    dataset = Dataset.from_root(trained_root)
    tokenizer = VQVAETokenizer.from_pretrained(model_dir_of(trained_root))
    whole = {item.file_name: tokenizer.encode(stored_mel(trained_root, item)) for item in dataset}
    assert max(tokenizer.window_frames()[0], 4096) == 4096 and all(len(c) * 4 < 4096 for c in whole.values())
    small_windows(monkeypatch)
    summary = encode_dataset(dataset, tokenizer, "tiny", options=INLINE)
    assert (summary.done, summary.failed) == (6, 0)
    manifest = read_manifest(dataset.paths.manifest_path("vqvae")).set_index("file_name")
    for item in dataset:
        row = manifest.loc[item.file_name]
        codes = np.load(dataset.paths.derived / row["output_path"])
        assert row["output_path"] == f"tokens/vqvae/vqvae_{item.stem}.npy" and codes.dtype == np.int16
        assert len(codes) * 4 > 3 * 64, "several windows"
        np.testing.assert_array_equal(codes, whole[item.file_name])
        assert row["frames_per_second"] == pytest.approx(48_000 * row["time_expansion"] / 256 / 4)
        assert len(codes) == pytest.approx(row["seconds"] * row["frames_per_second"], abs=2)
        assert row["kind"] == "tokens" and row["codebook_size"] == 16
    again = encode_dataset(dataset, tokenizer, "tiny", options=INLINE)
    assert again.skipped == 6


def test_worker_processes_give_the_codes_of_inline(trained_project, tmp_path, monkeypatch):
    small_windows(monkeypatch)
    tokenizer = VQVAETokenizer.from_pretrained(model_dir_of(trained_project))
    codes = {}
    for workers in (0, 2):
        dataset = Dataset.from_root(trained_project, tmp_path / f"derived{workers}")
        summary = encode_dataset(dataset, tokenizer, "tiny", options=RunOptions(workers=workers, show_progress=False))
        assert summary.done == 6
        codes[workers] = {p.name: np.load(p) for p in (tmp_path / f"derived{workers}" / "tokens" / "vqvae").glob("*.npy")}
    assert codes[0].keys() == codes[2].keys() and len(codes[0]) == 6
    for name in codes[0]:
        np.testing.assert_array_equal(codes[0][name], codes[2][name])


def test_a_model_failure_on_one_file_fails_only_that_file(trained_root, monkeypatch):
    import bat_vqvae.encode as encode
    from bat_vqvae.encoder import CodeEncoder

    dataset = Dataset.from_root(trained_root)
    poisoned = 2

    class PoisonedEncoder(CodeEncoder):
        def __call__(self, batch):
            if any(piece.file == poisoned for piece in batch):
                raise RuntimeError("poisoned window")
            return super().__call__(batch)

    small_windows(monkeypatch)
    monkeypatch.setattr(encode, "CodeEncoder", PoisonedEncoder)
    summary = encode_dataset(dataset, VQVAETokenizer.from_pretrained(model_dir_of(trained_root)), "tiny", options=INLINE)
    assert (summary.done, summary.failed) == (5, 1)
    assert summary.failures[0][0] == dataset[poisoned].file_name and "poisoned window" in summary.failures[0][1]


def test_tagged_codes_live_beside_the_default(trained_root):
    dataset = Dataset.from_root(trained_root)
    tokenizer = VQVAETokenizer.from_pretrained(model_dir_of(trained_root))
    encode_dataset(dataset, tokenizer, "tiny", options=INLINE, tag="k16")
    manifest = read_manifest(dataset.paths.manifest_path("vqvae-k16"))
    assert len(manifest) == 6 and all(manifest.output_path.str.startswith("tokens/vqvae-k16/vqvae_"))
    assert not dataset.paths.manifest_path("vqvae").exists()


def test_holdout_scores_are_streamed_in_windows_and_equal_whole_file_scores(trained_project, monkeypatch):
    import bat_vqvae.holdout as holdout
    from bat_core.metrics import code_counts, perplexity, usage

    dataset = Dataset.from_root(trained_project)
    tokenizer = VQVAETokenizer.from_pretrained(model_dir_of(trained_project))
    items = list(dataset)[:2]
    mels = [stored_mel(trained_project, item) for item in items]
    codes = [tokenizer.encode(mel) for mel in mels]
    errors = [((tokenizer.normalizer.normalise(tokenizer.decode(c, mel.shape[1])) - tokenizer.normalizer.normalise(mel))
               ** 2) for c, mel in zip(codes, mels)]
    lengths, runs = [], []
    original = holdout.ScoreEncoder.__call__
    monkeypatch.setattr(holdout.ScoreEncoder, "__call__", lambda self, batch: lengths.extend(p.length for p in batch)
                        or original(self, batch))
    run = holdout.run
    monkeypatch.setattr(holdout, "run", lambda *args, **kwargs: runs.append(1) or run(*args, **kwargs))
    small_windows(monkeypatch, 64, 32)
    scores = holdout.score_holdout(tokenizer, items, INLINE)
    assert runs == [1] and max(lengths) <= 64 and len(lengths) > 10
    counts = code_counts(codes, 16)
    assert scores.usage == pytest.approx(usage(counts)) and scores.perplexity == pytest.approx(perplexity(counts))
    assert scores.mse == pytest.approx(sum(e.sum() for e in errors) / sum(e.size for e in errors), rel=1e-4)


class TestEncodeContract(StrategyContract):
    """bat-core's contract for per-file commands: bad files, resume, manifest rows, kill -9."""

    representation = "vqvae"

    @pytest.fixture(autouse=True)
    def _trained(self, trained_project):
        self.model_dir = model_dir_of(trained_project)

    def run_strategy(self, root, models, workers=0, overwrite=False):
        return encode_dataset(Dataset.from_root(root), VQVAETokenizer.from_pretrained(self.model_dir), "tiny",
                              overwrite=overwrite, options=RunOptions(workers=workers, show_progress=False))

    def command(self, root, models):
        return [sys.executable, "-c", "import sys; from bat_vqvae.cli import main; sys.exit(main(sys.argv[1:]))",
                "encode", "--root", str(root), "--model", str(self.model_dir), "-q", "--num-workers", "1"]
