import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bat_core.dataset import Dataset
from bat_core.errors import ConfigMismatchError, ModelNotFoundError
from bat_core.mels import MelConfig
from bat_core.store import read_manifest
from bat_core.testing import add_bad_files
from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, encode_dataset, train

TINY_MEL = MelConfig(n_mels=32)
TINY_MODEL = VQVAEConfig(n_mels=32, hidden=16, codes=16, code_dim=8)
TINY_TRAIN = TrainConfig(steps=6, batch_size=4, crop_frames=32, checkpoint_every=3, log_every=2,
                         kmeans_init_vectors=512, kmeans_iters=5, holdout_fraction=0.2)


def tiny_train(root, model_dir, train_config=TINY_TRAIN, **kwargs):
    return train(Dataset.from_root(root), model_dir, TINY_MODEL, train_config, TINY_MEL, device="cpu",
                 show_progress=False, num_workers=0, **kwargs)


def test_train_saves_artefact_log_and_checkpoints(demo_root, tmp_path):
    result = tiny_train(demo_root, tmp_path / "model")
    model_dir = tmp_path / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model"]["codes"] == 16 and config["mel"]["n_mels"] == 32 and config["trained_steps"] == 6
    assert not list(model_dir.rglob("*.pt")) and not list(model_dir.rglob("*.pkl")), "no pickle"
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["step_0000003", "step_0000006"]
    with open(model_dir / "train_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert all(0 < float(r["batch_usage"]) <= 1 and float(r["batch_perplexity"]) >= 1 for r in rows)
    assert 0 < result.holdout_usage <= 1 and result.holdout_perplexity >= 1 and result.holdout_mse > 0
    assert len(result.holdout_files) == 1


def test_seeded_training_is_deterministic_and_resume_matches_uninterrupted(demo_root, tmp_path):
    tiny_train(demo_root, tmp_path / "full")
    tiny_train(demo_root, tmp_path / "again")
    tiny_train(demo_root, tmp_path / "resumed", replace(TINY_TRAIN, steps=3))
    tiny_train(demo_root, tmp_path / "resumed", resume=True)
    full = load_file(str(tmp_path / "full" / "model.safetensors"))
    for other in ("again", "resumed"):
        weights = load_file(str(tmp_path / other / "model.safetensors"))
        for name, tensor in full.items():
            assert torch.equal(tensor, weights[name]), f"{other}: {name} differs"
    with open(tmp_path / "resumed" / "train_log.csv") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [2, 3, 4, 6]  # 3: end of the short run


def test_resume_refuses_other_settings(demo_root, tmp_path):
    tiny_train(demo_root, tmp_path / "m", replace(TINY_TRAIN, steps=3))
    with pytest.raises(ConfigMismatchError, match="--resume needs the same settings"):
        tiny_train(demo_root, tmp_path / "m", replace(TINY_TRAIN, lr=1e-2), resume=True)


def test_save_load_round_trip(demo_root, tmp_path):
    tiny_train(demo_root, tmp_path / "model")
    tokenizer = VQVAETokenizer.from_pretrained(tmp_path / "model")
    mel = np.load(next((demo_root / "derived" / "mels_48k").glob("*.npy")))
    codes = tokenizer.encode(mel)
    assert codes.dtype == np.int16 and codes.shape == (-(-mel.shape[1] // 4), 8)
    tokenizer.save(tmp_path / "copy")
    again = VQVAETokenizer.from_pretrained(tmp_path / "copy")
    np.testing.assert_array_equal(again.encode(mel), codes)
    decoded = again.decode(codes, n_frames=mel.shape[1])
    assert decoded.shape == mel.shape
    assert np.mean((decoded - mel) ** 2) < np.var(mel), "reconstruction beats predicting the mean"


def test_long_recordings_are_encoded_in_chunks_like_whole(demo_root, tmp_path, monkeypatch):
    import bat_vqvae.artefact as artefact

    tiny_train(demo_root, tmp_path / "model")
    tokenizer = VQVAETokenizer.from_pretrained(tmp_path / "model")
    mel = np.load(next((demo_root / "derived" / "mels_48k").glob("*.npy")))
    whole = tokenizer.encode(mel)
    monkeypatch.setattr(artefact, "ENCODE_CHUNK_FRAMES", 64)
    monkeypatch.setattr(artefact, "CHUNK_OVERLAP_FRAMES", 16)
    np.testing.assert_array_equal(tokenizer.encode(mel), whole)


def test_waveform_api_matches_mel_api(demo_root, tmp_path):
    from bat_core.audio import load_audio

    tiny_train(demo_root, tmp_path / "model")
    tokenizer = VQVAETokenizer.from_pretrained(tmp_path / "model")
    item = Dataset.from_root(demo_root)[0]
    recording = load_audio(item.path)
    mel = np.load(demo_root / "derived" / "mels_48k" / f"{item.stem}.npy")
    np.testing.assert_array_equal(tokenizer.encode_waveform(recording.samples, recording.sample_rate), tokenizer.encode(mel))


def test_missing_model_names_the_option(tmp_path):
    with pytest.raises(ModelNotFoundError, match="--model PATH"):
        VQVAETokenizer.from_pretrained(tmp_path / "nothing")


def test_encode_through_the_store_with_bad_files(demo_root, tmp_path):
    tiny_train(demo_root, tmp_path / "model")
    expected = add_bad_files(demo_root)
    dataset = Dataset.from_root(demo_root)
    tokenizer = VQVAETokenizer.from_pretrained(tmp_path / "model")
    summary = encode_dataset(dataset, tokenizer, "tiny", num_workers=0, show_progress=False)
    assert (summary.given, summary.done, summary.failed) == (12, 7, 5)
    for name, text in expected.items():
        assert text in dict(summary.failures)[name]
    manifest = read_manifest(dataset.paths.manifest_path("vqvae"))
    ok = manifest[manifest.status == "ok"]
    assert len(manifest) == 12 and len(ok) == 7
    row = ok.iloc[0]
    codes = np.load(dataset.paths.derived / row["output_path"])
    assert row["output_path"].startswith("tokens/vqvae/vqvae_") and list(codes.shape) == json.loads(row["shape"])
    assert row["frames_per_second"] == pytest.approx(48_000 * 5 / 256 / 4)
    assert codes.shape[0] == pytest.approx(row["seconds"] * row["frames_per_second"], abs=2)
    again = encode_dataset(dataset, tokenizer, "tiny", num_workers=0, show_progress=False)
    assert (again.skipped, again.failed) == (7, 5)
