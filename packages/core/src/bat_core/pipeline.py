"""Run per-file work with decoding in background threads and a progress bar.

Decoding (soundfile), resampling (soxr) and FFTs release the GIL, so threads keep
the consumer (a model, the store) fed without pickling arrays between processes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from tqdm.auto import tqdm

from bat_core.errors import AudioError, BatError

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


def iter_prepared(
    items: Iterable[Item],
    prepare: Callable[[Item], Result],
    num_workers: int = 0,
    prefetch: int = 4,
) -> Iterator[tuple[Item, Result | None, str | None]]:
    """Yield ``(item, result, None)`` or ``(item, None, reason)`` in input order.

    ``num_workers=0`` runs inline. A file that raises becomes a reason, never an
    exception: one bad recording does not stop a run.
    """
    if num_workers <= 0:
        for item in items:
            yield (item, *_call(prepare, item))
        return
    with ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="bat-prepare") as pool:
        pending: deque[tuple[Item, Future]] = deque()
        for item in items:
            pending.append((item, pool.submit(_call, prepare, item)))
            if len(pending) >= num_workers * prefetch:
                done_item, future = pending.popleft()
                yield (done_item, *future.result())
        while pending:
            done_item, future = pending.popleft()
            yield (done_item, *future.result())


def _call(prepare, item):
    try:
        return prepare(item), None
    except (AudioError, BatError) as error:
        return None, str(error)
    except Exception as error:  # an unforeseen failure of one file is still one failed row
        log.debug("unexpected error on %r", item, exc_info=True)
        return None, f"{type(error).__name__}: {error}"


def progress(iterable: Iterable, total: int, description: str, enabled: bool = True):
    """A tqdm bar on stderr; off with ``-q`` or when ``enabled`` is False."""
    return tqdm(iterable, total=total, desc=description, unit="file", disable=not enabled or total == 0,
                dynamic_ncols=True, leave=False)
