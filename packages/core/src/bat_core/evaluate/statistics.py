"""Token statistics: how much of the codebook is used, and how tokens relate to time."""

from __future__ import annotations

import numpy as np

from bat_core.evaluate.representations import Representation
from bat_core.metrics import code_counts, entropy_bits, perplexity


def mean_run_length(tokens: np.ndarray) -> float:
    """Average length of runs of a repeated token along time (1.0: every token differs from the last)."""
    flat = tokens.reshape(len(tokens), -1) if tokens.ndim > 1 else tokens[:, None]
    runs = []
    for column in flat.T:  # for 2-D codes (T', F'): runs along time in each frequency row
        if len(column):
            changes = np.count_nonzero(column[1:] != column[:-1])
            runs.append(len(column) / (changes + 1))
    return float(np.mean(runs)) if runs else 0.0


def token_statistics(representation: Representation) -> dict:
    arrays = list(representation.arrays.values())
    size = representation.codebook_size or 1
    counts = code_counts(arrays, size)
    total_tokens = int(counts.sum())
    total_seconds = sum(representation.seconds.values())
    return {
        "codes_used": int(np.count_nonzero(counts)),
        "codebook_size": size,
        "usage": float(np.count_nonzero(counts) / size),
        "perplexity": perplexity(counts),
        "entropy_bits": entropy_bits(counts),
        "tokens_per_second": total_tokens / total_seconds if total_seconds else float("nan"),
        "mean_run_length": float(np.mean([mean_run_length(a) for a in arrays])) if arrays else float("nan"),
        "code_counts": counts.tolist(),
    }
