"""The per-frame work of a k-means token run: adding frames to the fit sample, and nearest-centroid assignment.

Target (runner issue): <= 1 ms per 10,000 frames of 768 dims for each, on the device or vectorised.
Side by side: bat_core.kmeans.HashedSample (order-free, filled while the corpus streams past) against
round 1's reservoir (algorithm R with a numpy rng, as it was in bat_w2v_kmeans.kmeans), both once full
(the steady state of a corpus larger than the sample), and bat_core.kmeans.nearest on this machine's CPU
(and CUDA when present).

    python tools/bench/kmeans_ops.py
"""

from __future__ import annotations

import time

import numpy as np


class RoundOneReservoir:
    """Round 1's uniform reservoir (algorithm R), kept here only as the benchmark's baseline."""

    def __init__(self, capacity: int, dim: int, seed: int = 0):
        self.capacity = capacity
        self.rows = np.empty((capacity, dim), dtype=np.float16)
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def add(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames, dtype=np.float16)
        free = max(0, min(self.capacity - self.seen, len(frames)))
        self.rows[self.seen:self.seen + free] = frames[:free]
        rest = frames[free:]
        if len(rest):
            positions = self.seen + free + np.arange(len(rest))
            slots = (self.rng.random(len(rest)) * (positions + 1)).astype(np.int64)
            keep = slots < self.capacity
            self.rows[slots[keep]] = rest[keep]
        self.seen += len(frames)


def per_block(function, blocks: list[np.ndarray]) -> float:
    started = time.perf_counter()
    for index, block in enumerate(blocks):
        function(index, block)
    return (time.perf_counter() - started) / len(blocks) * 1000


def main() -> None:
    import torch

    from bat_core.kmeans import HashedSample, nearest

    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal((10_000, 768)).astype(np.float32) for _ in range(20)]
    capacity = 50_000
    for total in (200_000, 1_000_000):  # the round-1 benchmark corpus had 183,661 frames
        count = total // 10_000
        ours, theirs = HashedSample(capacity, 768), RoundOneReservoir(capacity, 768)
        hashed = per_block(lambda i, b, ours=ours: ours.add(f"file{i}", 0, b), [blocks[i % 20] for i in range(count)])
        reservoir = per_block(lambda i, b, theirs=theirs: theirs.add(b), [blocks[i % 20] for i in range(count)])
        steady = per_block(lambda i, b, ours=ours: ours.add(f"more{i}", 0, b), blocks[:5])
        halves = [b.astype(np.float16) for b in blocks[5:10]]  # as bat-w2v-kmeans hands them over: cast on the device
        steady_half = per_block(lambda i, b, ours=ours: ours.add(f"half{i}", 0, b), halves)
        print(f"fit sample (capacity {capacity:,}), mean per 10,000 frames x 768 over {total:,} frames: HashedSample "
              f"{hashed:.2f} ms, round-1 reservoir {reservoir:.2f} ms ({reservoir / hashed:.1f}x); the next 10,000 after "
              f"them: {steady:.2f} ms given float32 rows, {steady_half:.2f} ms given float16 rows; target <= 1 ms: "
              f"{'met' if steady_half <= 1 else 'MISSED'} (once full, float16 rows)")
    centroids = torch.from_numpy(rng.standard_normal((128, 768)).astype(np.float32))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        frames = [torch.from_numpy(b).to(device) for b in blocks[:10]]
        on_device = centroids.to(device)
        nearest(frames[0], on_device)
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for block in frames:
            nearest(block, on_device)
        if device == "cuda":
            torch.cuda.synchronize()
        ms = (time.perf_counter() - started) / len(frames) * 1000
        print(f"nearest centroid (K=128) on {device} ({torch.get_num_threads()} threads), per 10,000 frames x 768: "
              f"{ms:.2f} ms; target <= 1 ms: {'met' if ms <= 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
