"""The one check that keeps wrong numbers out of ok rows: every float output must be finite."""

from __future__ import annotations

import numpy as np

from bat_core.errors import NonFiniteError


def require_finite(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` itself, or NonFiniteError naming ``what`` and how many values are NaN or infinite."""
    if array.dtype.kind in "fc" and array.size and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise NonFiniteError(f"{what} has {bad} NaN/inf value(s) of {array.size}: not written")
    return array
