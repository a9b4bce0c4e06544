"""Codebook statistics shared by every token strategy (and by evaluation)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def code_counts(tokens: np.ndarray | Iterable[np.ndarray], codebook_size: int) -> np.ndarray:
    """How often each code occurs, over one array or many."""
    arrays = [tokens] if isinstance(tokens, np.ndarray) else list(tokens)
    counts = np.zeros(codebook_size, dtype=np.int64)
    for array in arrays:
        flat = np.asarray(array).ravel().astype(np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= codebook_size):
            raise ValueError(f"token outside 0..{codebook_size - 1}")
        counts += np.bincount(flat, minlength=codebook_size)
    return counts


def entropy_bits(counts: np.ndarray) -> float:
    """Entropy of the code distribution in bits per token (0 for one code)."""
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def perplexity(counts: np.ndarray) -> float:
    """2**entropy: the effective number of codes in use (1 for a single code, K for uniform)."""
    return float(2.0 ** entropy_bits(counts))


def usage(counts: np.ndarray) -> float:
    """Share of the codebook used at least once."""
    return float(np.count_nonzero(counts) / len(counts))
