import numpy as np
import pytest
import torch

from bat_vqvae.config import VQVAEConfig
from bat_vqvae.data import MelNormalizer, pad_batch, random_crops, split_holdout
from bat_vqvae.model import VQVAE
from bat_vqvae.quantizer import EMAVectorQuantizer, kmeans
from bat_vqvae.train import masked_mse

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


def test_variable_lengths_batch_with_a_mask():
    mels = [np.ones((30, 5), np.float32), np.ones((30, 11), np.float32) * 2]
    batch, mask = pad_batch(mels)
    assert batch.shape == (2, 30, 11) and mask.sum(1).tolist() == [5, 11]
    assert batch[0, :, 5:].abs().sum() == 0
    # padding does not count in the loss
    assert masked_mse(torch.zeros_like(batch), batch, mask).item() == pytest.approx((5 * 1 + 11 * 4) / 16)
    out = VQVAE(CONFIG)(batch)
    assert out["reconstruction"].shape == batch.shape


def test_random_crops_are_fixed_length_and_reproducible():
    mels = [np.random.rand(30, n).astype(np.float32) for n in (10, 100, 300)]
    a, mask_a = random_crops(mels, 5, 64, np.random.default_rng([0, 7]))
    b, _ = random_crops(mels, 5, 64, np.random.default_rng([0, 7]))
    assert a.shape == (5, 30, 64) and torch.equal(a, b)
    assert mask_a.any(dim=1).all()


def test_normalizer_round_trip():
    mels = [np.random.rand(30, 40).astype(np.float32) * 50 - 80 for _ in range(3)]
    normalizer = MelNormalizer.fit(mels)
    normalised = normalizer.normalise(mels[0])
    np.testing.assert_allclose(normalizer.denormalise(normalised), mels[0], rtol=1e-5, atol=1e-3)
    joined = np.concatenate([normalizer.normalise(m) for m in mels], axis=1)
    np.testing.assert_allclose(joined.mean(axis=1), 0, atol=1e-4)


def test_holdout_split():
    train, held = split_holdout([f"f{i}" for i in range(20)], 0.1, seed=0)
    assert len(held) == 2 and sorted(train + held) == list(range(20))
    assert split_holdout(["a", "b"], 0.1, 0)[1] != []


def test_kmeans_finds_separated_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2, generator=generator) for c in centres])
    found = kmeans(points, 3, 10, generator)
    assert torch.cdist(centres, found).min(dim=1).values.max() < 0.5


def test_dead_codes_are_restarted_on_data():
    torch.manual_seed(0)
    quantizer = EMAVectorQuantizer(codes=8, dim=2, dead_code_threshold=1.0, decay=0.5)
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


def test_uniform_init_collapses_kmeans_init_does_not():
    """The failure the naive recipe has: codes far from the data are never chosen."""
    torch.manual_seed(0)
    data = torch.randn(2000, 4) * 3
    collapsed = EMAVectorQuantizer(codes=16, dim=4, dead_code_threshold=0.0)
    collapsed.embed.uniform_(-1 / 16, 1 / 16)
    alive = EMAVectorQuantizer(codes=16, dim=4)
    alive.initialise(data, iters=10, generator=torch.Generator().manual_seed(0), vectors_per_batch=2000)
    assert len(alive.nearest(data).unique()) == 16
    assert len(alive.nearest(data).unique()) > len(collapsed.nearest(data).unique())
