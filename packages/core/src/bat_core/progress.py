"""Progress bars: one style for every long loop (tqdm on stderr, off with -q)."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(total: int, description: str, enabled: bool = True, unit: str = "file") -> tqdm:
    return tqdm(total=total, desc=description, unit=unit, disable=not enabled or total == 0, dynamic_ncols=True, leave=False)
