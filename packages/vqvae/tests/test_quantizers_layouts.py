"""Each quantiser and code layout trains, saves, loads and resumes like the default; the time layout's codes
map to the original recording's seconds."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bat_core.dataset import Dataset
from bat_core.mels import MelConfig
from bat_core.runner import RunOptions
from bat_core.store import read_manifest
from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, encode_dataset, train

TINY_MEL = MelConfig(n_mels=32)
TINY_TRAIN = TrainConfig(steps=6, batch_size=4, crop_frames=32, checkpoint_every=3, log_every=2,
                         kmeans_init_vectors=512, kmeans_iters=5, holdout_fraction=0.2)
INLINE = RunOptions(workers=0, show_progress=False)
VARIANTS = {
    "fsq-grid": VQVAEConfig(n_mels=32, hidden=16, code_dim=8, quantizer="fsq", fsq_levels=(4, 4, 3)),
    "ema-time": VQVAEConfig(n_mels=32, hidden=16, codes=16, code_dim=8, code_layout="time"),
    "fsq-time": VQVAEConfig(n_mels=32, hidden=16, code_dim=8, quantizer="fsq", fsq_levels=(5, 3), code_layout="time"),
    "rvq-grid": VQVAEConfig(n_mels=32, hidden=16, codes=16, code_dim=8, quantizer="rvq", rvq_depth=3),
    "rvq-time": VQVAEConfig(n_mels=32, hidden=16, codes=16, code_dim=8, quantizer="rvq", rvq_depth=2,
                            code_layout="time"),
}


@pytest.fixture(scope="module")
def project(demo_template, tmp_path_factory):
    """The demo corpus, its mels computed once by the first training."""
    root = tmp_path_factory.mktemp("variants") / "project"
    shutil.copytree(demo_template / "data", root / "data")
    return root


def tiny_train(root, model_dir, model_config, train_config=TINY_TRAIN, **kwargs):
    return train(Dataset.from_root(root), model_dir, model_config, train_config, TINY_MEL, device="cpu",
                 options=INLINE, **kwargs)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_saves_loads_and_resumes_bit_exactly(project, tmp_path, variant):
    config = VARIANTS[variant]
    tiny_train(project, tmp_path / "full", config)
    tiny_train(project, tmp_path / "resumed", config, replace(TINY_TRAIN, steps=3))
    tiny_train(project, tmp_path / "resumed", config, resume=True)
    full = load_file(str(tmp_path / "full" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert full.keys() == resumed.keys()
    for name, tensor in full.items():
        assert torch.equal(tensor, resumed[name]), f"{name} differs"
    saved = json.loads((tmp_path / "full" / "config.json").read_text())["model"]
    assert (saved["quantizer"], saved["code_layout"], saved["codes"]) == (config.quantizer, config.code_layout,
                                                                          config.codes)
    tokenizer = VQVAETokenizer.from_pretrained(tmp_path / "full")
    assert tokenizer.config == config
    mel = np.load(project / "derived" / TINY_MEL.representation / f"{Dataset.from_root(project)[0].stem}.npy")
    codes = tokenizer.encode(mel)
    expected = ((-(-mel.shape[1] // 4),) if config.code_layout == "time" else (-(-mel.shape[1] // 4), 8))
    expected += (config.rvq_depth,) if config.quantizer == "rvq" else ()
    assert codes.shape == expected and codes.dtype == np.int16 and codes.max() < config.codes
    assert tokenizer.decode(codes, n_frames=mel.shape[1]).shape == mel.shape


def test_time_layout_codes_map_to_original_seconds_and_the_manifest_says_so(project, tmp_path):
    model_dir = tmp_path / "time"
    tiny_train(project, model_dir, VARIANTS["ema-time"])
    tokenizer = VQVAETokenizer.from_pretrained(model_dir)
    dataset = Dataset.from_root(project, tmp_path / "derived")
    summary = encode_dataset(dataset, tokenizer, "time", options=INLINE)
    assert (summary.done, summary.failed) == (6, 0)
    manifest = read_manifest(dataset.paths.manifest_path("vqvae")).set_index("file_name")
    for item in dataset:
        row = manifest.loc[item.file_name]
        codes = np.load(dataset.paths.derived / row["output_path"])
        assert codes.ndim == 1 and json.loads(row["shape"]) == [len(codes)]
        extra = json.loads(row["extra"])
        assert extra == {"quantizer": "ema", "code_layout": "time", "code_axes": "(T',)"}
        # code i covers original seconds [i / fps, (i + 1) / fps): the last code ends with the recording
        assert row["frames_per_second"] == pytest.approx(48_000 * row["time_expansion"] / 256 / 4)
        assert len(codes) / row["frames_per_second"] == pytest.approx(row["seconds"], abs=1 / row["frames_per_second"])
        mel = np.load(project / "derived" / TINY_MEL.representation / f"{item.stem}.npy")
        np.testing.assert_array_equal(codes, tokenizer.encode(mel))


@pytest.mark.parametrize("variant", ["rvq-grid", "rvq-time"])
def test_rvq_codes_carry_a_depth_axis_and_the_manifest_states_it(project, tmp_path, variant):
    config = VARIANTS[variant]
    model_dir = tmp_path / variant
    tiny_train(project, model_dir, config)
    tokenizer = VQVAETokenizer.from_pretrained(model_dir)
    dataset = Dataset.from_root(project, tmp_path / "derived")
    summary = encode_dataset(dataset, tokenizer, variant, options=INLINE)
    assert (summary.done, summary.failed) == (6, 0)
    manifest = read_manifest(dataset.paths.manifest_path("vqvae")).set_index("file_name")
    axes = "(T', F', depth)" if config.code_layout == "grid" else "(T', depth)"
    for item in dataset:
        row = manifest.loc[item.file_name]
        codes = np.load(dataset.paths.derived / row["output_path"])
        assert json.loads(row["shape"]) == list(codes.shape) and codes.shape[-1] == config.rvq_depth
        assert json.loads(row["extra"])["code_axes"] == axes and json.loads(row["extra"])["rvq_depth"] == config.rvq_depth
        mel = np.load(project / "derived" / TINY_MEL.representation / f"{item.stem}.npy")
        np.testing.assert_array_equal(codes, tokenizer.encode(mel))
    held = json.loads((model_dir / "config.json").read_text())["holdout"]
    assert 0 < held["usage"] <= 1  # over all depth x codes entries


def test_a_time_layout_reconstruction_draws_one_row_of_codes(tmp_path):
    pytest.importorskip("matplotlib")
    from bat_vqvae.plot import render_reconstruction

    mel = np.random.default_rng(0).standard_normal((32, 40)).astype(np.float32)
    path = render_reconstruction(mel, mel, np.arange(10, dtype=np.int16), "t", tmp_path / "r.png", 100.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_saved_before_the_quantizer_options_still_loads_as_ema_grid():
    earlier = {"n_mels": 32, "hidden": 16, "codes": 16, "code_dim": 8, "downsample_layers": 2, "decay": 0.9,
               "commitment": 0.25, "dead_code_threshold": 2.0, "cosine": False}
    config = VQVAEConfig.from_dict(earlier)
    assert (config.quantizer, config.code_layout, config.codes) == ("ema", "grid", 16)
