"""Token statistics: how much of the codebook is used, and how tokens relate to time, gathered one file
at a time (``TokenStatistics.add``) so a corpus never has to sit in memory."""

from __future__ import annotations

import numpy as np

from bat_core.metrics import entropy_bits, perplexity


def mean_run_length(tokens: np.ndarray) -> float:
    """Average length of runs of a repeated token along time (1.0: every token differs from the last)."""
    flat = tokens.reshape(len(tokens), -1) if tokens.ndim > 1 else tokens[:, None]
    runs = []
    for column in flat.T:  # for 2-D codes (T', F'): runs along time in each frequency row
        if len(column):
            changes = np.count_nonzero(column[1:] != column[:-1])
            runs.append(len(column) / (changes + 1))
    return float(np.mean(runs)) if runs else 0.0


class TokenStatistics:
    """Code counts, run lengths and seconds of the files added so far."""

    def __init__(self, codebook_size: int):
        self.codebook_size = codebook_size
        self.counts = np.zeros(codebook_size, dtype=np.int64)
        self.run_lengths: list[float] = []
        self.seconds = 0.0

    def add(self, tokens: np.ndarray, seconds: float) -> None:
        self.counts += np.bincount(np.asarray(tokens, dtype=np.int64).ravel(), minlength=self.codebook_size)
        self.run_lengths.append(mean_run_length(tokens))
        self.seconds += float(seconds)

    def fields(self) -> dict:
        """Tokens per second divide the tokens of the files added by those files' seconds only."""
        used = int(np.count_nonzero(self.counts))
        return {
            "codes_used": used,
            "codebook_size": self.codebook_size,
            "usage": used / self.codebook_size,
            "perplexity": perplexity(self.counts),
            "entropy_bits": entropy_bits(self.counts),
            "tokens_per_second": int(self.counts.sum()) / self.seconds if self.seconds else float("nan"),
            "mean_run_length": float(np.mean(self.run_lengths)) if self.run_lengths else float("nan"),
            "code_counts": self.counts.tolist(),
        }
