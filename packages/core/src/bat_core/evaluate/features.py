"""Per-file token features that keep the unigram signal on top, built one file at a time as sparse rows.

A file's codes become a bag of unigrams (code frequencies) and, optionally, n-grams along time only:
for 1-D codes ``(T,)`` consecutive codes; for 2-D codes ``(T', F')`` (VQ-VAE: F' frequency rows) or
``(T, depth)`` each column is its own sequence over time, so no n-gram ever pairs two frequencies.
n-grams are hashed into ``NGRAM_BUCKETS`` columns per order, so the width never grows as K^2 (K=256
bigrams would be 65,536 noisy columns that bury the 256 unigram ones once standardised).

Each block is mapped to its Hellinger form (square root of the frequencies, then unit length), the usual
linear-model representation of histograms: rare codes are not inflated as standardisation does, and the
probe needs no scaler. The n-gram blocks together carry half the weight of the unigram block (each of
the orders 2..n gets 0.5 / (n - 1)), so adding them refines rather than replaces the unigram signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

NGRAM_BUCKETS = 4096
NGRAM_WEIGHT = 0.5
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads n-gram ids evenly over the buckets


@dataclass(frozen=True)
class TokenFeatures:
    """What a token file's vector holds; ``describe()`` goes into the report."""

    ngrams: int = 1  # 1: unigrams only; n: orders 2..n along time as well
    buckets: int = NGRAM_BUCKETS

    def __post_init__(self):
        if self.ngrams < 1 or self.buckets < 2 or self.buckets & (self.buckets - 1):
            raise ValueError(f"need ngrams >= 1 and a power-of-two bucket count, got {self.ngrams}, {self.buckets}")

    def width(self, codebook_size: int) -> int:
        return codebook_size + (self.ngrams - 1) * self.buckets

    def describe(self) -> str:
        text = "unigram code frequencies (Hellinger: square root, unit length)"
        if self.ngrams > 1:
            text += (f" + n-grams of order 2..{self.ngrams} along time only (2-D codes: per column, i.e. per "
                     f"frequency row), hashed into {self.buckets} columns per order, weight {NGRAM_WEIGHT} in all")
        return text


def sequences_along_time(codes: np.ndarray) -> np.ndarray:
    """``(T,)`` -> ``(1, T)``; ``(T', F')`` -> ``(F', T')``: one row per sequence that runs along time."""
    codes = np.asarray(codes)
    return codes.reshape(1, -1) if codes.ndim == 1 else codes.reshape(len(codes), -1).T


def _hellinger(columns: np.ndarray, counts: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    roots = np.sqrt(counts.astype(np.float64))
    norm = np.linalg.norm(roots)
    return columns, (weight * roots / norm) if norm else roots


def _ngram_buckets(sequences: np.ndarray, order: int, codebook_size: int, buckets: int) -> np.ndarray:
    if sequences.shape[1] < order:
        return np.zeros(0, dtype=np.int64)
    ids = np.zeros((sequences.shape[0], sequences.shape[1] - order + 1), dtype=np.uint64)
    for offset in range(order):
        ids = ids * np.uint64(codebook_size) + sequences[:, offset:sequences.shape[1] - order + 1 + offset].astype(np.uint64)
    bits = int(np.log2(buckets))
    return ((ids.ravel() * _GOLDEN) >> np.uint64(64 - bits)).astype(np.int64)


def file_features(codes: np.ndarray, codebook_size: int, config: TokenFeatures = TokenFeatures()) -> tuple[np.ndarray, np.ndarray]:
    """One file's sparse row: (column indices, values)."""
    sequences = sequences_along_time(codes).astype(np.int64)
    columns, counts = np.unique(sequences, return_counts=True)
    parts = [_hellinger(columns, counts, 1.0)]
    for order in range(2, config.ngrams + 1):
        columns, counts = np.unique(_ngram_buckets(sequences, order, codebook_size, config.buckets), return_counts=True)
        offset = codebook_size + (order - 2) * config.buckets
        parts.append(_hellinger(columns + offset, counts, NGRAM_WEIGHT / (config.ngrams - 1)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class SparseRows:
    """Rows appended one file at a time into a CSR matrix (memory: the non-zeros, never K + K^2 dense)."""

    def __init__(self, width: int):
        self.width = width
        self.indices: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def append(self, columns: np.ndarray, values: np.ndarray) -> None:
        self.indices.append(columns.astype(np.int32))
        self.values.append(values.astype(np.float32))

    def matrix(self) -> sp.csr_matrix:
        pointers = np.zeros(len(self.indices) + 1, dtype=np.int64)
        pointers[1:] = np.cumsum([len(i) for i in self.indices])
        indices = np.concatenate(self.indices) if self.indices else np.zeros(0, np.int32)
        values = np.concatenate(self.values) if self.values else np.zeros(0, np.float32)
        return sp.csr_matrix((values, indices, pointers), shape=(len(self.indices), self.width))
