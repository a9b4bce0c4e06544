import numpy as np
import pytest
import torch

from bat_vqvae.config import VQVAEConfig
from bat_vqvae.crops import random_crops, split_holdout
from bat_vqvae.guard import LossGuard, NonFiniteLossError, require_finite_weights
from bat_vqvae.mel_files import MelFile
from bat_vqvae.mel_windows import window_frames
from bat_vqvae.model import VQVAE
from bat_vqvae.normalizer import MelNormalizer, MelStatistics
from bat_vqvae.quantizer import EMAVectorQuantizer, kmeans_codebook
from bat_vqvae.rvq import ResidualVectorQuantizer
from bat_vqvae.training import masked_mse

CONFIG = VQVAEConfig(n_mels=30, hidden=8, codes=16, code_dim=4)


@pytest.mark.parametrize("frames", [1, 3, 37, 64, 129])
@pytest.mark.parametrize("n_mels", [30, 32])
def test_output_has_the_input_shape_for_any_frame_count(frames, n_mels):
    model = VQVAE(VQVAEConfig(n_mels=n_mels, hidden=8, codes=16, code_dim=4))
    mels = torch.randn(2, n_mels, frames)
    out = model(mels)
    assert out["reconstruction"].shape == mels.shape
    assert out["codes"].shape == (2, -(-frames // 4), -(-n_mels // 4))
    decoded = model.decode(model.encode(mels), n_mels, frames)
    assert decoded.shape == mels.shape


def test_deeper_and_cosine_configs():
    model = VQVAE(VQVAEConfig(n_mels=32, hidden=8, codes=8, code_dim=4, downsample_layers=3, cosine=True))
    out = model(torch.randn(1, 32, 50))
    assert out["reconstruction"].shape == (1, 32, 50) and out["codes"].shape == (1, 7, 4)
    assert torch.allclose(model.quantizer.embed.norm(dim=1), torch.ones(8), atol=1e-4)


@pytest.mark.parametrize("layout", ["grid", "time"])
@pytest.mark.parametrize("quantizer", ["ema", "fsq", "rvq"])
def test_each_quantizer_and_code_layout_round_trips_codes(quantizer, layout):
    config = VQVAEConfig(n_mels=30, hidden=8, code_dim=4, quantizer=quantizer, fsq_levels=(4, 3, 5),
                         code_layout=layout, codes=16, rvq_depth=3)
    assert config.codes == (60 if quantizer == "fsq" else 16)
    model = VQVAE(config).eval()  # no EMA update between the two passes
    mels = torch.randn(2, 30, 37)
    out = model(mels)
    expected = ((2, 10, 8) if layout == "grid" else (2, 10)) + ((3,) if quantizer == "rvq" else ())
    assert expected[1:] == (10, *config.code_tail)
    assert out["reconstruction"].shape == mels.shape and out["codes"].shape == expected
    codes = model.encode(mels)
    assert codes.shape == expected and codes.min() >= 0 and codes.max() < config.codes
    assert torch.equal(codes, out["codes"]), "training and encoding pick the same codes"
    assert model.decode(codes, 30, 37).shape == mels.shape
    out["reconstruction"].pow(2).mean().backward()  # gradients reach the encoder through the quantiser
    assert model.encoder[0].weight.grad.abs().sum() > 0


def test_fsq_codes_are_the_mixed_radix_number_of_the_rounded_digits():
    from bat_vqvae.fsq import FiniteScalarQuantizer

    fsq = FiniteScalarQuantizer((8, 5, 5, 5), dim=4)
    every = torch.arange(1000)
    vectors = fsq.lookup(every)
    assert vectors.shape == (1000, 4)
    with torch.no_grad():  # each code's own digits, pushed through the bound, give the code back
        digits = (every[:, None] // fsq.basis) % fsq.levels.long() - fsq.levels.long() // 2
        half_l = (fsq.levels - 1) * (1 + 1e-3) / 2
        offset = (fsq.levels % 2 == 0).float() * 0.5
        pre = torch.atanh((digits + offset) / half_l) - torch.atanh(offset / half_l)
        assert torch.equal(fsq._indices(torch.tanh(pre + torch.atanh(offset / half_l)) * half_l - offset), every)
    assert sorted(fsq.nearest(torch.randn(5000, 4) * 10).unique().tolist())[0] >= 0
    with pytest.raises(ValueError, match="fsq_levels must be integers >= 2"):
        VQVAEConfig(quantizer="fsq", fsq_levels=(8, 1))
    with pytest.raises(ValueError, match="code_layout must be one of grid, time"):
        VQVAEConfig(code_layout="freq")


def test_padding_does_not_count_in_the_loss():
    batch = torch.zeros(2, 30, 11)
    batch[0, :, :5], batch[1] = 1.0, 2.0
    mask = torch.zeros(2, 11, dtype=torch.bool)
    mask[0, :5], mask[1] = True, True
    assert masked_mse(torch.zeros_like(batch), batch, mask).item() == pytest.approx((5 * 1 + 11 * 4) / 16)
    assert masked_mse(torch.zeros_like(batch), batch, None).item() == pytest.approx(float((batch ** 2).mean()))


def _stored(tmp_path, name, mel, fortran=True):
    path = tmp_path / f"{name}.npy"
    np.save(path, np.asfortranarray(mel) if fortran else np.ascontiguousarray(mel))
    return MelFile.open(path, mel.shape[0])


@pytest.mark.parametrize("fortran", [True, False])
def test_stored_mels_are_read_a_crop_at_a_time(tmp_path, fortran):
    mel = np.random.default_rng(0).standard_normal((30, 500)).astype(np.float32)
    stored = _stored(tmp_path, "a", mel, fortran)
    assert (stored.frames, stored.fortran) == (500, fortran)
    np.testing.assert_array_equal(stored.read(123, 64), mel[:, 123:187])
    np.testing.assert_array_equal(stored.read(480, 64), mel[:, 480:])  # cut at the end
    np.testing.assert_array_equal(np.concatenate(list(stored.blocks(128)), axis=1), mel)
    with pytest.raises(ValueError, match="not a float32 mel of 64 bands"):
        MelFile.open(tmp_path / "a.npy", 64)


def test_random_crops_are_fixed_length_and_reproducible(tmp_path):
    rng = np.random.default_rng(1)
    files = [_stored(tmp_path, f"m{n}", rng.random((30, n)).astype(np.float32)) for n in (10, 100, 300)]
    normalizer = MelNormalizer(np.zeros(30, np.float32), np.ones(30, np.float32))
    a = random_crops(files, 5, 64, np.random.default_rng([0, 7]), normalizer)
    b = random_crops(files, 5, 64, np.random.default_rng([0, 7]), normalizer)
    assert a.data.shape == (5, 30, 64) and np.array_equal(a.data, b.data) and a.files == b.files
    for row, index in enumerate(a.files):
        assert a.mask[row].sum() == min(64, files[index].frames)
        assert not a.data[row, :, a.mask[row].sum():].any(), "past a short file's end: zeros"


def test_streamed_statistics_equal_whole_file_statistics():
    rng = np.random.default_rng(2)
    mels = [(rng.standard_normal((30, n)) * 10 - 70).astype(np.float32) for n in (40, 333, 1000)]
    statistics = MelStatistics()
    for mel in mels:
        for start in range(0, mel.shape[1], 64):
            statistics.add(mel[:, start:start + 64])
    streamed = statistics.normalizer()
    joined = np.concatenate(mels, axis=1).astype(np.float64)
    np.testing.assert_allclose(streamed.mean, joined.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(streamed.std, joined.std(axis=1), rtol=1e-5)
    np.testing.assert_allclose(streamed.denormalise(streamed.normalise(mels[0])), mels[0], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(streamed.normalise_frames(mels[1].T), streamed.normalise(mels[1]))


def test_holdout_split():
    train, held = split_holdout([f"f{i}" for i in range(20)], 0.1, seed=0)
    assert len(held) == 2 and sorted(train + held) == list(range(20))
    assert split_holdout(["a", "b"], 0.1, 0)[1] != []


def test_windows_sit_on_the_code_grid_and_cover_the_receptive_field():
    for layers in (1, 2, 3, 5):
        config = VQVAEConfig(downsample_layers=layers)
        window, hop = window_frames(config.stride, config.receptive_field)
        assert window % config.stride == 0 and hop % config.stride == 0
        assert window - hop >= config.receptive_field


def test_bat_core_kmeans_finds_separated_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2, generator=generator) for c in centres])
    found = kmeans_codebook(points, 3, 10, seed=0)
    assert torch.cdist(centres, found).min(dim=1).values.max() < 0.5
    cosine = kmeans_codebook(points + 1, 3, 10, seed=0, cosine=True)
    assert torch.allclose(cosine.norm(dim=1), torch.ones(3), atol=1e-5)


def test_dead_codes_are_restarted_on_data():
    torch.manual_seed(0)
    quantizer = EMAVectorQuantizer(codes=8, dim=2, dead_code_share=0.5, decay=0.5)
    quantizer.embed.fill_(100.0)  # every code far from the data...
    quantizer.embed[0] = 0.0  # ...but one, which takes every vector
    quantizer.embed_sum.copy_(quantizer.embed)
    quantizer.cluster_size.fill_(1.0)
    quantizer.train()
    data = torch.randn(256, 2)
    quantizer(data)
    assert (quantizer.embed.abs() < 10).all(), "codes nobody chose were moved onto data"
    _, indices, _ = quantizer(data)
    assert len(indices.unique()) > 1


def test_codes_on_a_tiny_share_of_a_large_batch_are_restarted_over_long_training():
    """At a GPU-sized batch an absolute dead-code count (the former 2) never fires: codes that the data has
    nearly left (here half the codebook, on clusters holding 0.02% of the vectors each) lived on forever, and
    the perplexity stayed at the 8 busy clusters (8.1 after 300 steps with the former rule, 13.3 now). The relative
    threshold moves them onto the data, where they split the busy clusters."""
    generator = torch.Generator().manual_seed(0)
    busy = torch.tensor([[10.0 * (i % 4), 10.0 * (i // 4)] for i in range(8)])
    rare = busy + 100.0  # far from the busy ones: only their own few vectors reach them
    quantizer = EMAVectorQuantizer(codes=16, dim=2, decay=0.9)
    quantizer.embed.copy_(torch.cat([busy, rare]))
    quantizer.cluster_size.fill_(1024.0)
    quantizer.embed_sum.copy_(quantizer.embed * 1024)
    quantizer.train()
    for _ in range(300):
        centres = torch.cat([busy.repeat_interleave(2044, 0), rare.repeat_interleave(3, 0)])  # 16 376 vectors
        quantizer(centres + torch.randn(centres.shape, generator=generator))
    counts = torch.bincount(quantizer.nearest(centres + torch.randn(centres.shape, generator=generator)),
                            minlength=16).double()
    shares = counts / counts.sum()
    assert torch.exp(-(shares[shares > 0] * shares[shares > 0].log()).sum()) > 12


def test_each_rvq_level_quantises_what_the_levels_before_left():
    torch.manual_seed(0)
    data = torch.randn(4000, 4) * 3
    errors = []
    for depth in (1, 2, 4):
        quantizer = ResidualVectorQuantizer(codes=8, dim=4, depth=depth)
        quantizer.initialise(data, iters=10, seed=0, vectors_per_batch=4000)
        indices = quantizer.nearest(data)
        assert indices.shape == (4000, depth)
        assert all(len(indices[:, level].unique()) == 8 for level in range(depth)), "every level's codes in use"
        errors.append(float((quantizer.lookup(indices) - data).pow(2).mean()))
    assert errors[0] > errors[1] > errors[2], f"more levels leave less: {errors}"


def test_a_dead_rvq_code_is_restarted_on_its_level_s_residuals():
    torch.manual_seed(0)
    quantizer = ResidualVectorQuantizer(codes=8, dim=2, depth=2, decay=0.5, dead_code_share=0.5)
    data = torch.randn(256, 2)
    quantizer.initialise(data, iters=5, seed=0, vectors_per_batch=256)
    second = quantizer.levels[1]
    second.embed[3] = 100.0  # a level-2 code far from every residual
    second.embed_sum[3] = second.embed[3] * second.cluster_size[3]
    quantizer.train()
    for _ in range(5):
        quantizer(data)
    assert second.embed[3].abs().max() < 10, "moved onto a residual"


def test_uniform_init_collapses_kmeans_init_does_not():
    """The failure the naive recipe has: codes far from the data are never chosen."""
    torch.manual_seed(0)
    data = torch.randn(2000, 4) * 3
    collapsed = EMAVectorQuantizer(codes=16, dim=4, dead_code_share=0.0)
    collapsed.embed.uniform_(-1 / 16, 1 / 16)
    alive = EMAVectorQuantizer(codes=16, dim=4)
    alive.initialise(data, iters=10, seed=0, vectors_per_batch=2000)
    assert len(alive.nearest(data).unique()) == 16
    assert len(alive.nearest(data).unique()) > len(collapsed.nearest(data).unique())


def test_loss_guard_names_the_files_of_the_first_bad_step():
    guard = LossGuard()
    guard.note(1, torch.tensor(0.5), ["a.wav", "b.wav"])
    guard.check()  # finite: nothing happens
    guard.note(2, torch.tensor(0.4), ["a.wav"])
    guard.note(3, torch.tensor(float("inf")), ["c.wav", "d.wav"])
    guard.note(4, torch.tensor(float("nan")), ["e.wav"])
    with pytest.raises(NonFiniteLossError, match=r"at step 3, on a batch cropped from c\.wav, d\.wav") as raised:
        guard.check()
    assert "e.wav" not in str(raised.value) and "\n" not in str(raised.value)


def test_weights_with_a_nan_are_refused():
    model = VQVAE(CONFIG)
    require_finite_weights(model, "here")
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="not saved to here"):
        require_finite_weights(model, "here")


def test_prefetched_crops_are_the_crops_of_each_step(tmp_path):
    from bat_vqvae.config import TrainConfig
    from bat_vqvae.training import step_crops

    rng = np.random.default_rng(0)
    files = [_stored(tmp_path, name, rng.standard_normal((30, frames)).astype(np.float32))
             for name, frames in (("a", 300), ("b", 20), ("c", 90))]
    normalizer = MelNormalizer(np.zeros(30, np.float32), np.ones(30, np.float32))
    config = TrainConfig(steps=7, batch_size=3, crop_frames=32)
    plain = list(step_crops(files, normalizer, 2, config, prefetch=False))
    ahead = list(step_crops(files, normalizer, 2, config, prefetch=True))
    assert len(plain) == len(ahead) == 5
    for one, other in zip(plain, ahead):
        np.testing.assert_array_equal(one.data, other.data)
        assert one.files == other.files
    resumed = list(step_crops(files, normalizer, 4, config, prefetch=True))
    np.testing.assert_array_equal(resumed[0].data, plain[2].data)
