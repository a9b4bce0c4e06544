import numpy as np
import pytest

from bat_core.metrics import code_counts, entropy_bits, perplexity, usage


def test_single_code_has_perplexity_one_and_zero_entropy():
    counts = code_counts(np.full(50, 3), 8)
    assert perplexity(counts) == 1.0 and entropy_bits(counts) == 0.0 and usage(counts) == 1 / 8


def test_uniform_codes_have_perplexity_k():
    counts = code_counts([np.arange(8), np.arange(8).reshape(2, 4)], 8)
    assert perplexity(counts) == pytest.approx(8) and entropy_bits(counts) == pytest.approx(3) and usage(counts) == 1


def test_out_of_range_and_empty():
    with pytest.raises(ValueError):
        code_counts(np.array([9]), 8)
    assert perplexity(code_counts(np.array([], dtype=int), 4)) == 1.0
