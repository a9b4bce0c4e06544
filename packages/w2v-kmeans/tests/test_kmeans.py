import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from bat_w2v_kmeans.kmeans import Reservoir, fit_kmeans, nearest


def test_reservoir_is_bounded_and_uniform():
    reservoir = Reservoir(capacity=1000, dim=1, seed=0, dtype=np.float32)  # row numbers as values: exact
    for start in range(0, 100_000, 7_000):
        block = np.arange(start, min(start + 7_000, 100_000), dtype=np.float32)[:, None]
        reservoir.add(block)
    sample = reservoir.sample()[:, 0]
    assert reservoir.seen == 100_000 and len(sample) == 1000 and len(np.unique(sample)) == 1000
    # uniform: each tenth of the stream holds ~10% of the sample
    counts = np.histogram(sample, bins=10, range=(0, 100_000))[0]
    assert counts.min() > 60 and counts.max() < 140


def test_reservoir_keeps_everything_under_capacity():
    reservoir = Reservoir(capacity=50, dim=2)
    reservoir.add(np.ones((30, 2)))
    assert reservoir.sample().shape == (30, 2)


def test_half_precision_reservoir_fits_the_same_codebook():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (8, 16))
    frames = (centres[rng.integers(8, size=4000)] + rng.normal(0, 1, (4000, 16))).astype(np.float32)
    half, full = Reservoir(10_000, 16), Reservoir(10_000, 16, dtype=np.float32)
    half.add(frames), full.add(frames)
    assert half.sample().dtype == np.float16 and half.sample().nbytes * 2 == full.sample().nbytes
    a, b = fit_kmeans(half.sample(), 8, seed=0), fit_kmeans(full.sample(), 8, seed=0)
    assert a.inertia == pytest.approx(b.inertia, rel=1e-3)
    np.testing.assert_allclose(a.centroids, b.centroids, atol=1e-2)


def test_kmeans_matches_sklearn_inertia_and_is_seeded():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (8, 16))
    frames = (centres[rng.integers(8, size=4000)] + rng.normal(0, 1, (4000, 16))).astype(np.float32)
    ours = fit_kmeans(frames, 8, seed=0)
    again = fit_kmeans(frames, 8, seed=0)
    np.testing.assert_array_equal(ours.centroids, again.centroids)
    reference = KMeans(8, random_state=0).fit(frames)
    assert ours.inertia <= reference.inertia_ * 1.02
    assert ours.iterations >= 2
    with pytest.raises(ValueError):
        fit_kmeans(frames[:3], 8)


def test_nearest_in_blocks(monkeypatch):
    import bat_w2v_kmeans.kmeans as kmeans

    monkeypatch.setattr(kmeans, "CHUNK_ROWS", 7)
    frames = torch.randn(50, 4)
    centroids = torch.randn(5, 4)
    index, distance = nearest(frames, centroids)
    expected = torch.cdist(frames, centroids).pow(2)
    assert torch.equal(index, expected.argmin(1))
    torch.testing.assert_close(distance, expected.min(1).values, rtol=1e-4, atol=1e-4)
