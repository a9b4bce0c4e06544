import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import ASTFeatureExtractor

from bat_ast_embed import ASTEmbedder, EmbedConfig
from bat_ast_embed.positions import adapted_position_embeddings, time_patches
from bat_core.errors import AudioError, ModelNotFoundError
from bat_core.provenance import config_hash
from bat_core.time_expansion import TimeExpansion, convert_for_model

RATE = 250_000


def embedder(tiny_ast, **kwargs):
    return ASTEmbedder.from_pretrained(tiny_ast, EmbedConfig(**kwargs), device="cpu")


def test_waveform_goes_through_the_checkpoints_own_extractor(tiny_ast, clip):
    model = embedder(tiny_ast)
    samples = clip(0.05)
    features = model.features(samples, RATE)
    converted, conversion = convert_for_model(samples, RATE, 16_000, TimeExpansion())
    extractor = ASTFeatureExtractor.from_pretrained(tiny_ast)
    n_frames = 1 + (len(converted) - 400) // 160
    extractor.max_length = n_frames
    expected = extractor(converted, sampling_rate=16_000, return_tensors="np")["input_values"][0]
    np.testing.assert_allclose(features.frames, expected, rtol=1e-6)
    assert conversion.time_expansion == 15 and features.conversion.time_expansion == 15
    assert features.frames.shape == (n_frames, 32)
    assert features.seconds == pytest.approx(0.05)


def test_fixed_length_pads_to_trained_length_like_the_extractor(tiny_ast, clip):
    model = embedder(tiny_ast)
    samples = clip(0.02)  # 0.3 s of model audio: ~29 frames, padded to 128
    extractor = ASTFeatureExtractor.from_pretrained(tiny_ast)
    converted, _ = convert_for_model(samples, RATE, 16_000, TimeExpansion())
    inputs = extractor(converted, sampling_rate=16_000, return_tensors="pt")["input_values"]
    with torch.inference_mode():
        reference = model.model(input_values=inputs).pooler_output[0].numpy()
    embedding = model.embed(samples, RATE)
    assert embedding.run_frames == [128]
    np.testing.assert_allclose(embedding.pooler, reference, rtol=1e-5, atol=1e-6)


def test_auto_runs_short_clips_at_their_bucket_and_long_clips_in_windows(tiny_ast, clip):
    model = embedder(tiny_ast, max_frames="auto", bucket_frames=16)
    short = model.embed(clip(0.02), RATE)
    assert short.run_frames == [32] and short.pooled.shape == (32,)
    long = model.embed(clip(0.2), RATE)  # 3 s of model audio: ~300 frames > 128
    assert long.windows == 3 and long.run_frames[:2] == [128, 128]
    frames = model.features(clip(0.2), RATE).frames.shape[0]
    # windows start every 120 frames (12 patches of 10), so their patch sequences join without gap
    assert 240 < frames <= 368
    assert long.sequence.shape == (12 + 12 + time_patches(frames - 240), 32)
    assert np.isfinite(long.pooled).all()


def test_auto_equals_fixed_when_a_clip_fills_the_trained_length(tiny_ast, clip):
    samples = clip(128 * 160 / 16_000 / 15 + 0.001)
    fixed = embedder(tiny_ast).embed(samples, RATE)
    auto = embedder(tiny_ast, max_frames="auto").embed(samples, RATE)
    np.testing.assert_allclose(auto.pooled[:], fixed.pooled, rtol=1e-5, atol=1e-6)


def test_results_do_not_depend_on_batch_mates(tiny_ast, clip):
    model = embedder(tiny_ast, max_frames="auto", bucket_frames=16)
    a, b = model.features(clip(0.02, 1), RATE), model.features(clip(0.03, 2), RATE)
    alone = model.embed_features([a])[0]
    together = model.embed_features([b, a, b], batch_size=3)[1]
    np.testing.assert_allclose(alone.pooled, together.pooled, rtol=1e-5, atol=1e-6)


def test_pool_and_layer_options(tiny_ast, clip):
    samples = clip(0.03)
    pooler = embedder(tiny_ast, pool="pooler").embed(samples, RATE)
    mean = embedder(tiny_ast, pool="mean").embed(samples, RATE)
    np.testing.assert_array_equal(mean.pooled, pooler.mean)
    assert not np.allclose(pooler.pooled, pooler.mean)
    last = embedder(tiny_ast, layer=2).embed(samples, RATE)  # layer N == the last layer
    np.testing.assert_allclose(last.pooled, pooler.pooled, rtol=1e-5, atol=1e-6)
    first = embedder(tiny_ast, layer=0).embed(samples, RATE)
    assert not np.allclose(first.pooled, pooler.pooled)
    with pytest.raises(ValueError, match="--layer"):
        embedder(tiny_ast, layer=7)
    with pytest.raises(ValueError, match="pool"):
        EmbedConfig(pool="max")


def test_position_embeddings_crop_and_interpolate():
    trained = torch.arange((2 + 2 * 5) * 3, dtype=torch.float32).reshape(1, 2 + 2 * 5, 3)
    cropped = adapted_position_embeddings(trained, 2, 5, 3)
    grid = trained[:, 2:].reshape(1, 2, 5, 3)
    assert torch.equal(cropped[:, :2], trained[:, :2])
    assert torch.equal(cropped[:, 2:].reshape(1, 2, 3, 3), grid[:, :, :3])
    longer = adapted_position_embeddings(trained, 2, 5, 9)
    assert longer.shape == (1, 2 + 2 * 9, 3)


def test_longer_than_trained_length_by_interpolation(tiny_ast, clip):
    embedding = embedder(tiny_ast, max_frames=256).embed(clip(0.1), RATE)
    assert embedding.run_frames == [256] and np.isfinite(embedding.pooled).all()


def test_offline_unknown_model_names_the_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="--model PATH"):
        ASTEmbedder.from_pretrained("MIT/ast-finetuned-audioset-10-10-0.4593", device="cpu")


def test_a_model_of_another_architecture_is_refused(tiny_wav2vec2):
    with pytest.raises(ModelNotFoundError, match="'wav2vec2'.*'audio-spectrogram-transformer'"):
        ASTEmbedder.from_pretrained(tiny_wav2vec2, device="cpu")


def test_a_checkpoint_missing_weights_is_refused(tiny_ast, tmp_path):
    partial = tmp_path / "partial_ast"
    shutil.copytree(tiny_ast, partial)
    weights = load_file(partial / "model.safetensors")
    del weights["layernorm.weight"]
    save_file(weights, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelNotFoundError, match="lacks 1 of the AST's weights.*layernorm.weight"):
        ASTEmbedder.from_pretrained(partial, device="cpu")


def test_the_hashed_settings_hold_the_weights_and_the_precision_not_the_path(tiny_ast, other_tiny_ast, tmp_path):
    model = embedder(tiny_ast)
    settings = model.settings()
    assert settings["precision"] == "float32" and "model" not in settings
    moved = tmp_path / "moved"
    shutil.copytree(tiny_ast, moved)
    assert config_hash(embedder(moved).settings()) == config_hash(settings)  # same weights elsewhere: same outputs
    other = embedder(other_tiny_ast).settings()
    assert other["weights"] != settings["weights"] and config_hash(other) != config_hash(settings)
    assert config_hash({**settings, "precision": "bfloat16"}) != config_hash(settings)
    assert config_hash(embedder(tiny_ast, layer=0).settings()) != config_hash(settings)


def test_non_finite_samples_are_refused_in_memory(tiny_ast, clip):
    samples = clip(0.02)
    samples[10] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        embedder(tiny_ast).embed(samples, RATE)
