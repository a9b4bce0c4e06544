import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="k-means runs in torch: pip install torch==2.13.0")
KMeans = pytest.importorskip("sklearn.cluster", reason="the reference k-means is scikit-learn's: pip install 'bat-core[evaluate]'").KMeans

from bat_core.kmeans import HashedSample, fit_kmeans, nearest  # noqa: E402 (after the skips above)


def test_sample_is_bounded_and_uniform():
    sample = HashedSample(capacity=1000, dim=1, seed=0, dtype=np.float32)  # row numbers as values: exact
    for start in range(0, 100_000, 7_000):
        block = np.arange(start, min(start + 7_000, 100_000), dtype=np.float32)[:, None]
        sample.add("one file", start, block)
    rows = sample.sample()[:, 0]
    assert sample.seen == 100_000 and len(rows) == 1000 and len(np.unique(rows)) == 1000
    # uniform: each tenth of the stream holds ~10% of the sample
    counts = np.histogram(rows, bins=10, range=(0, 100_000))[0]
    assert counts.min() > 60 and counts.max() < 140


def test_sample_does_not_depend_on_order_or_on_who_saw_a_row():
    rng = np.random.default_rng(0)
    files = {f"f{i}.wav": rng.standard_normal((int(rng.integers(50, 400)), 4)).astype(np.float32) for i in range(30)}
    one = HashedSample(500, 4, seed=3, dtype=np.float32)
    for name, rows in files.items():
        for start in range(0, len(rows), 64):
            one.add(name, start, rows[start:start + 64])
    reverse = HashedSample(500, 4, seed=3, dtype=np.float32)
    for name in reversed(list(files)):
        reverse.add(name, 0, files[name])
    shards = [HashedSample(500, 4, seed=3, dtype=np.float32) for _ in range(3)]
    for index, (name, rows) in enumerate(files.items()):
        shards[index % 3].add(name, 0, rows)
    merged = HashedSample(500, 4, seed=3, dtype=np.float32)
    for shard in shards:
        merged.merge(shard)
    np.testing.assert_array_equal(one.sample(), reverse.sample())
    np.testing.assert_array_equal(one.sample(), merged.sample())
    assert one.seen == reverse.seen == merged.seen == sum(len(r) for r in files.values())
    other_seed = HashedSample(500, 4, seed=4, dtype=np.float32)
    for name, rows in files.items():
        other_seed.add(name, 0, rows)
    assert not np.array_equal(one.sample(), other_seed.sample())


def test_sample_keeps_everything_under_capacity():
    sample = HashedSample(capacity=50, dim=2)
    sample.add("a", 0, np.ones((20, 2)))
    assert sample.sample().shape == (20, 2) and sample.sample().dtype == np.float16


def test_once_full_only_rows_that_can_enter_are_wanted():
    sample = HashedSample(capacity=1000, dim=768, seed=0)
    rng = np.random.default_rng(0)
    for index in range(20):
        sample.add(f"file{index}", 0, rng.standard_normal((10_000, 768)).astype(np.float32))
    keep, _ = sample.wanted("another file", 0, 10_000)
    assert len(keep) < 200  # ~1000/200,000 of a block: a GPU caller copies out a few rows, not 10,000


def test_half_precision_sample_fits_the_same_codebook():
    rng = np.random.default_rng(0)
    frames = (rng.standard_normal((5_000, 16)) + rng.integers(0, 8, 5_000)[:, None] * 4).astype(np.float32)
    half, full = HashedSample(10_000, 16), HashedSample(10_000, 16, dtype=np.float32)
    half.add("x", 0, frames)
    full.add("x", 0, frames)
    a = fit_kmeans(half.sample(), 8, seed=0)
    b = fit_kmeans(full.sample(), 8, seed=0)
    assert a.inertia == pytest.approx(b.inertia, rel=1e-3)


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
    import bat_core.kmeans as kmeans

    monkeypatch.setattr(kmeans, "CHUNK_ROWS", 7)
    frames = torch.randn(50, 4)
    centroids = torch.randn(5, 4)
    index, distance = nearest(frames, centroids)
    expected = torch.cdist(frames, centroids).pow(2)
    assert torch.equal(index, expected.argmin(1))
    torch.testing.assert_close(distance, expected.min(1).values, rtol=1e-4, atol=1e-4)
