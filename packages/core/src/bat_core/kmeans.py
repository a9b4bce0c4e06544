"""k-means that scales, for every strategy (bat-w2v-kmeans codebooks, bat-vqvae's codebook start,
bat-hubert's targets): a bounded sample of rows, k-means++ and Lloyd in torch on the device.

Following fairseq's HuBERT ``simple_kmeans`` recipe (dump features, fit on a sample, assign
everything), but the sample is filled while the corpus streams past (``HashedSample``: it does
not depend on file order or on which process saw a row), so the corpus never sits in memory;
and Lloyd runs as chunked matrix products on CPU or GPU. Chosen by measurement over
scikit-learn's KMeans / MiniBatchKMeans: see BENCHMARKS.md. torch is imported when a fit or an
assignment runs, not with this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

CHUNK_ROWS = 16_384  # rows per distance block: bounds memory at CHUNK_ROWS x k
SEEDING_ROWS_PER_CENTROID = 32


_MASK = (1 << 64) - 1


def _splitmix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over uint64 arrays (wrapping arithmetic): a good, cheap, portable hash."""
    values = values + np.uint64(0x9E3779B97F4A7C15)
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def row_priorities(seed: int, key: str, positions: np.ndarray) -> np.ndarray:
    """A uint64 priority for each row ``positions`` of the stream named ``key`` (a file name): the same in
    every process, shard and run for the same seed."""
    digest = int.from_bytes(hashlib.sha1(f"{seed}:{key}".encode()).digest()[:8], "little")
    with np.errstate(over="ignore"):
        return _splitmix(np.asarray(positions, dtype=np.uint64) ^ np.uint64(digest))


class HashedSample:
    """At most ``capacity`` rows of everything offered: those with the smallest hashed priorities.

    Each row's priority depends only on (seed, file name, row position), so the sample is the same
    whatever the order in which files arrive, and whichever worker, shard or Ray task saw them
    (``merge`` joins samples made apart). Rows are kept in float16 by default: half the memory of the
    largest thing a fit holds, for a rounding (~1e-3 relative) far below the spread of the clusters it
    feeds. Once full, ``wanted`` says which rows of a block can still enter, so a caller gathers (and
    copies off a GPU) only those. Rows never move: an entering row takes the slot of one evicted, and
    evictions run in bulk over ``capacity / 4`` spare slots, so each row offered costs its hash, and
    each row kept one copy.
    """

    def __init__(self, capacity: int, dim: int, seed: int = 0, dtype: np.dtype = np.float16):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity, self.dim, self.seed, self.dtype = capacity, dim, seed, np.dtype(dtype)
        self.slots = capacity + max(1, capacity // 4)
        self.rows: np.ndarray | None = None  # (slots, dim), allocated as rows arrive (up to `slots`)
        self.keys = np.zeros(0, dtype=np.uint64)
        self.occupied = np.zeros(0, dtype=bool)
        self.free: list[np.ndarray] = []  # slot indices freed by evictions, used before growing
        self.used = 0  # slots handed out so far (occupied or freed)
        self.seen = 0
        self.threshold = np.uint64(_MASK)  # rows with a priority above it can no longer enter

    def wanted(self, key: str, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions within the block, priorities) of the rows ``start .. start+count`` of ``key`` that may enter."""
        priorities = row_priorities(self.seed, key, np.arange(start, start + count, dtype=np.uint64))
        keep = np.flatnonzero(priorities <= self.threshold)
        return keep, priorities[keep]

    def add(self, key: str, start: int, rows: np.ndarray) -> None:
        """Offer the rows ``start .. start+len(rows)`` of the stream ``key``."""
        keep, priorities = self.wanted(key, start, len(rows))
        rows = np.asarray(rows)
        self.add_selected(rows if len(keep) == len(rows) else rows[keep], priorities, offered=len(rows))

    def add_selected(self, rows: np.ndarray, priorities: np.ndarray, offered: int) -> None:
        """Rows already chosen with ``wanted`` (and their priorities), of a block of ``offered`` rows."""
        self.seen += offered
        rows, priorities = np.asarray(rows, dtype=self.dtype), np.asarray(priorities, dtype=np.uint64)  # cast once, then copy
        while len(rows):
            entering = priorities <= self.threshold
            if not entering.all():
                rows, priorities = rows[entering], priorities[entering]
            slots = self._take_slots(len(rows))
            if len(slots) == 0:
                self._evict()
                continue
            where = slots if len(slots) == 1 or slots[-1] - slots[0] != len(slots) - 1 else slice(slots[0], slots[-1] + 1)
            self.rows[where] = rows[: len(slots)]  # a run of fresh slots is a plain copy, not a scatter
            self.keys[where] = priorities[: len(slots)]
            self.occupied[where] = True
            rows, priorities = rows[len(slots):], priorities[len(slots):]

    def _take_slots(self, count: int) -> np.ndarray:
        if self.rows is None:
            self.rows = np.empty((self.slots, self.dim), dtype=self.dtype)
            self.keys = np.zeros(self.slots, dtype=np.uint64)
            self.occupied = np.zeros(self.slots, dtype=bool)
        taken = []
        while count and self.free:
            block = self.free.pop()
            taken.append(block[:count])
            if len(block) > count:
                self.free.append(block[count:])
            count -= len(taken[-1])
        if count and self.used < self.slots:
            fresh = np.arange(self.used, min(self.slots, self.used + count))
            self.used += len(fresh)
            taken.append(fresh)
        return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)

    def _evict(self, keep: int | None = None) -> None:
        """Free the slots of all but the ``keep`` (default: capacity) smallest priorities."""
        keep = self.capacity if keep is None else keep
        held = np.flatnonzero(self.occupied)
        if len(held) <= keep:
            return
        order = np.argpartition(self.keys[held], keep - 1)
        evicted = held[order[keep:]]
        self.occupied[evicted] = False
        self.free.append(evicted)
        self.threshold = self.keys[held[order[:keep]]].max()

    def merge(self, other: HashedSample) -> None:
        """Join a sample made elsewhere (another worker or shard) with the same seed and capacity."""
        held = np.flatnonzero(other.occupied)
        self.add_selected(other.rows[held] if len(held) else np.zeros((0, self.dim)), other.keys[held], offered=other.seen)

    def sample(self) -> np.ndarray:
        """The kept rows, in priority order (a deterministic order too)."""
        if self.rows is None:
            return np.zeros((0, self.dim), dtype=self.dtype)
        self._evict()
        held = np.flatnonzero(self.occupied)
        return self.rows[held[np.argsort(self.keys[held], kind="stable")]]


@dataclass
class KMeansResult:
    centroids: np.ndarray  # (k, dim) float32
    inertia: float  # sum of squared distances of the fitted rows to their centroid
    iterations: int
    rows: int


def nearest(frames: torch.Tensor, centroids: torch.Tensor, frame_norms: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of and squared distance to the nearest centroid, in row blocks (on the frames' device)."""
    import torch

    centroid_norms = centroids.pow(2).sum(1)
    if frame_norms is None:
        frame_norms = frames.pow(2).sum(1)
    indices, distances = [], []
    for start in range(0, len(frames), CHUNK_ROWS):
        block = frames[start:start + CHUNK_ROWS]
        scores = torch.addmm(centroid_norms, block, centroids.t(), alpha=-2)
        best, index = scores.min(dim=1)
        indices.append(index)
        distances.append((best + frame_norms[start:start + CHUNK_ROWS]).clamp(min=0))
    return torch.cat(indices), torch.cat(distances)


def _kmeans_plus_plus(frames: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ (as scikit-learn: 2 + log k candidates per step, keep the best).

    Distances come from one (n x candidates) matrix product per step with precomputed
    norms, not ``cdist``: this start was 95% of the fit time before."""
    import torch

    n = len(frames)
    trials = 2 + int(np.log(k))
    norms = frames.pow(2).sum(1)
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    closest = (norms - 2 * frames @ frames[first] + norms[first]).clamp(min=0)
    for _ in range(1, k):
        total = closest.sum()
        weights = closest / total if total > 0 else torch.full_like(closest, 1 / n)
        candidates = torch.multinomial(weights.cpu(), trials, replacement=True, generator=generator).to(frames.device)
        distances = torch.addmm(norms[candidates][None, :] + norms[:, None], frames, frames[candidates].t(), alpha=-2)
        distances = torch.minimum(closest[:, None], distances.clamp(min=0))
        best = int(distances.sum(0).argmin())
        chosen.append(int(candidates[best]))
        closest = distances[:, best]
    return frames[chosen].clone()


def fit_kmeans(sample: np.ndarray, k: int, seed: int = 0, device: str | torch.device = "cpu",
               max_iter: int = 100, tol: float = 1e-4) -> KMeansResult:
    """Lloyd iterations from a k-means++ start until the inertia improves by less than ``tol``."""
    import torch

    if len(sample) < k:
        raise ValueError(f"need at least k={k} frames to fit, got {len(sample)}")
    frames = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32)).to(device)
    generator = torch.Generator().manual_seed(seed)
    # seeding needs only a few dozen rows per centroid; Lloyd then runs on every row
    seeding_rows = frames[torch.randperm(len(frames), generator=generator)[: SEEDING_ROWS_PER_CENTROID * k].to(frames.device)]
    centroids = _kmeans_plus_plus(seeding_rows, k, generator)
    frame_norms = frames.pow(2).sum(1)
    previous = float("inf")
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        assignment, distances = nearest(frames, centroids, frame_norms)
        inertia = float(distances.sum())
        sums = torch.zeros_like(centroids).index_add_(0, assignment, frames)
        counts = torch.bincount(assignment, minlength=k).to(frames.dtype)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp(min=1)[:, None])
        if empty.any():  # re-seed empty clusters on the worst-fitted frames
            centroids[empty] = frames[distances.topk(int(empty.sum())).indices]
        if np.isfinite(previous) and previous - inertia <= tol * previous:
            break
        previous = inertia
    _, distances = nearest(frames, centroids, frame_norms)
    return KMeansResult(centroids.cpu().numpy(), float(distances.sum()), iterations, len(frames))
