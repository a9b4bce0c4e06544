import json

import numpy as np
import pytest

from bat_core.audio import load_audio
from bat_core.dataset import Dataset
from bat_core.errors import ConfigMismatchError, ModelNotFoundError
from bat_core.store import read_manifest
from bat_core.testing import add_bad_files, make_tiny_speech_encoder
from bat_core.time_expansion import TimeExpansion
from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer, encode_dataset, run_lengths


def fitted(model_dir, root, layer=None, seed=0, k=8):
    tokenizer = W2VKMeansTokenizer(SpeechEncoder.from_pretrained(model_dir, layer=layer, device="cpu"))
    tokenizer.fit(Dataset.from_root(root), k=k, max_fit_frames=2000, seed=seed, num_workers=0, show_progress=False)
    return tokenizer


@pytest.mark.parametrize("kind", ["tiny_wav2vec2", "tiny_hubert"])
def test_fit_encode_save_load(kind, request, demo_root, tmp_path):
    model_dir = request.getfixturevalue(kind)
    tokenizer = fitted(model_dir, demo_root)
    info = tokenizer.codebook.info
    assert info.k == 8 and info.fit_frames == 2000 and info.frames_seen > 2000 and info.inertia > 0
    assert info.time_expansion == "auto" and info.model_sample_rate == 16_000 and info.samples_per_frame == 320
    item = Dataset.from_root(demo_root)[0]
    recording = load_audio(item.path)
    tokens = tokenizer.encode(recording.samples, recording.sample_rate)
    assert tokens.dtype == np.int16 and tokens.min() >= 0 and tokens.max() < 8
    # time alignment: one token per 320 model samples = 320/16000/15 s of original audio
    assert len(tokens) == pytest.approx(recording.seconds * 16_000 * 15 / 320, abs=2)
    tokenizer.save(tmp_path / "codebook")
    loaded = W2VKMeansTokenizer.from_pretrained(tmp_path / "codebook", device="cpu")
    np.testing.assert_array_equal(loaded.encode(recording.samples, recording.sample_rate), tokens)
    assert json.loads((tmp_path / "codebook" / "config.json").read_text())["model_id"] == str(model_dir)


def test_same_seed_same_tokens_other_seed_other_codebook(tiny_wav2vec2, demo_root):
    a, b, c = (fitted(tiny_wav2vec2, demo_root, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.codebook.centroids, b.codebook.centroids)
    assert not np.array_equal(a.codebook.centroids, c.codebook.centroids)


def test_layer_choice_changes_features(tiny_wav2vec2):
    samples = np.random.default_rng(0).standard_normal(16_000).astype(np.float32)
    last = SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu").frames([samples])[0]
    two = SpeechEncoder.from_pretrained(tiny_wav2vec2, layer=2, device="cpu").frames([samples])[0]
    zero = SpeechEncoder.from_pretrained(tiny_wav2vec2, layer=0, device="cpu").frames([samples])[0]
    assert last.shape == zero.shape == (49, 32)
    np.testing.assert_allclose(two, last, rtol=1e-5, atol=1e-5)  # hidden_states[2] is the last layer of two
    assert not np.allclose(zero, last)
    with pytest.raises(ConfigMismatchError, match="--layer"):
        SpeechEncoder.from_pretrained(tiny_wav2vec2, layer=5, device="cpu")


def test_frames_do_not_depend_on_batch_mates_and_windows_stitch(tiny_wav2vec2, tiny_hubert, tmp_path):
    rng = np.random.default_rng(0)
    short, other = rng.standard_normal(5_000).astype(np.float32), rng.standard_normal(12_345).astype(np.float32)
    unmasked = make_tiny_speech_encoder(tmp_path / "no_mask", "hubert", attention_mask=False)  # like hubert-base
    for model_dir in (tiny_wav2vec2, tiny_hubert, unmasked):
        encoder = SpeechEncoder.from_pretrained(model_dir, device="cpu")
        assert encoder.uses_attention_mask == (model_dir != unmasked)
        alone = encoder.frames([short])[0]
        together = encoder.frames([other, short, other], batch_size=3)[1]
        np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-5)
        assert len(alone) == encoder.frame_count(5_000)
    windowed = SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu", window_seconds=1.0, overlap_seconds=0.25)
    long = rng.standard_normal(40_000).astype(np.float32)
    frames = windowed.frames([long])[0]
    assert abs(len(frames) - windowed.frame_count(40_000)) <= 1


def test_long_recordings_are_encoded_a_few_at_a_time_with_the_same_frames(tiny_wav2vec2, demo_root, monkeypatch):
    import bat_w2v_kmeans.tokenizer as module

    tokenizer = W2VKMeansTokenizer(SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu"))
    items = list(Dataset.from_root(demo_root))[:6]
    together = [r.frames for r in tokenizer.iter_frames(items, num_workers=0, show_progress=False)]
    held = []
    original = tokenizer.encoder.frames
    monkeypatch.setattr(tokenizer.encoder, "frames", lambda waves, *a: held.append(len(waves)) or original(waves, *a))
    monkeypatch.setattr(module, "SECONDS_PER_CHUNK", 1e-3)  # every recording is "long": one per chunk
    alone = [r.frames for r in tokenizer.iter_frames(items, num_workers=0, show_progress=False)]
    assert held == [1] * len(items)
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_codebook_of_another_model_or_layer_is_refused(tiny_wav2vec2, tiny_hubert, demo_root, tmp_path):
    fitted(tiny_wav2vec2, demo_root).save(tmp_path / "codebook")
    with pytest.raises(ConfigMismatchError, match="model_fingerprint"):
        W2VKMeansTokenizer.from_pretrained(tmp_path / "codebook", model=str(tiny_hubert), device="cpu")
    with pytest.raises(ConfigMismatchError, match="layer"):
        W2VKMeansTokenizer.from_pretrained(tmp_path / "codebook", layer=1, device="cpu")
    with pytest.raises(ConfigMismatchError, match="time_expansion"):
        W2VKMeansTokenizer.from_pretrained(tmp_path / "codebook", expansion=TimeExpansion.parse("10"), device="cpu")
    with pytest.raises(ModelNotFoundError, match="--codebook"):
        W2VKMeansTokenizer.from_pretrained(tmp_path / "none", device="cpu")


def test_encode_dataset_with_bad_files_resume_and_dedup(tiny_wav2vec2, demo_root):
    tokenizer = fitted(tiny_wav2vec2, demo_root)
    expected = add_bad_files(demo_root)
    dataset = Dataset.from_root(demo_root)
    summary = encode_dataset(dataset, tokenizer, dedup=True, num_workers=2, show_progress=False)
    assert (summary.given, summary.done, summary.failed) == (12, 7, 5)
    for name, text in expected.items():
        assert text in dict(summary.failures)[name]
    manifest = read_manifest(dataset.paths.manifest_path("w2v_kmeans"))
    row = manifest[manifest.status == "ok"].iloc[0]
    tokens = np.load(dataset.paths.derived / row["output_path"])
    assert row["output_path"].startswith("tokens/w2v_kmeans_") and tokens.ndim == 1
    assert row["frames_per_second"] == pytest.approx(16_000 * 15 / 320)
    assert len(tokens) == pytest.approx(row["seconds"] * row["frames_per_second"], abs=2)
    runs = np.load((dataset.paths.derived / row["output_path"]).with_suffix("").with_suffix(".runs.npy"))
    np.testing.assert_array_equal(np.repeat(runs[:, 0], runs[:, 1]), tokens)
    again = encode_dataset(dataset, tokenizer, dedup=True, show_progress=False)
    assert (again.skipped, again.done, again.failed) == (7, 0, 5)


def test_run_lengths():
    np.testing.assert_array_equal(run_lengths(np.array([3, 3, 1, 1, 1, 3])), [[3, 2], [1, 3], [3, 1]])
    assert run_lengths(np.array([], dtype=np.int16)).shape == (0, 2)


def test_offline_unknown_model_names_the_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="--model PATH"):
        SpeechEncoder.from_pretrained("facebook/wav2vec2-base", device="cpu")


def test_opt_in_bf16_on_cpu_stays_close_to_fp32(tiny_wav2vec2):
    from bat_core.device import cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16 (AVX512-BF16/AMX)")
    samples = np.random.default_rng(0).standard_normal(16_000).astype(np.float32)
    fp32 = SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu").frames([samples])[0]
    bf16 = SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu", precision="bf16").frames([samples])[0]
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    cosine = (fp32 * bf16).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1))
    assert cosine.min() > 0.98
