"""Run ``prepare`` over a run's files in worker processes and hand back their messages in file order.

Decoding, resampling and framing hold the GIL in places (numpy, soundfile's Python layer),
so they run in processes, started with ``spawn`` (safe with CUDA in the parent; the macOS
default) and importing no model code. Worker ``w`` of ``W`` prepares files ``w, w+W, ...``
into its own bounded queue; this process reads the queues round robin, so messages come
in file order, batches are the same as with ``workers=0`` and so are the outputs.

A worker that dies (a decoder crash, the OOM killer) fails the file it was on; a new worker
takes over the rest of its files.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bat_core.dataset import DatasetItem
from bat_core.errors import RunStopped
from bat_core.runner import Failure, FileInfo, Message, Prepare, RunOptions, failure_reason

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
MAX_DEATHS_IN_A_ROW = 8  # workers dying with nothing received in between: they cannot run here


def messages(items: Sequence[DatasetItem], prepare: Prepare, options: RunOptions) -> Iterator[tuple[int, Message]]:
    """``(file index, message)`` for every file, in file order; each file ends with FileInfo or Failure."""
    if options.workers <= 0 or len(items) == 0:
        yield from _inline(items, prepare)
        return
    pool = _Pool(items, prepare, min(options.workers, len(items)), options.max_memory_mb)
    try:
        yield from pool
    finally:
        pool.close()


def _inline(items: Sequence[DatasetItem], prepare: Prepare) -> Iterator[tuple[int, Message]]:
    for index, item in enumerate(items):
        yield from _prepared(index, item, prepare)


def _prepared(index: int, item: DatasetItem, prepare: Prepare) -> Iterator[tuple[int, Message]]:
    try:
        for message in prepare(item):
            yield index, message
    except Exception as error:  # one bad file is one failed row, whatever it raised
        log.debug("prepare failed on %s", item.file_name, exc_info=True)
        yield index, Failure(failure_reason(error))


def _worker_main(prepare: Prepare, tasks: list[tuple[int, DatasetItem]], out: multiprocessing.Queue, current) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    parent = multiprocessing.parent_process()
    if parent is not None:  # a parent killed with -9 cannot stop its workers: they stop themselves
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True, name="bat-watch-parent").start()
    for index, item in tasks:
        current.value = index  # shared memory: if this process dies, the parent knows on which file
        for indexed in _prepared(index, item, prepare):
            try:  # pickled here, not in the queue's feeder thread, where an error would lose the message silently
                payload = pickle.dumps(indexed, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as error:
                payload = pickle.dumps((index, Failure(f"cannot pass this file's data between processes: {error}")))
                _send(out, payload, parent)
                break
            _send(out, payload, parent)


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _send(out: multiprocessing.Queue, payload: bytes, parent) -> None:
    """Put into the bounded queue; exit if the parent is gone (killed with -9, it cannot stop its workers)."""
    while True:
        try:
            out.put(payload, timeout=POLL_SECONDS)
            return
        except queue.Full:
            if parent is not None and not parent.is_alive():
                os._exit(0)


class _Pool:
    def __init__(self, items: Sequence[DatasetItem], prepare: Prepare, workers: int, max_memory_mb: int):
        self.items, self.prepare, self.workers = items, prepare, workers
        piece_bytes = max(1, int(getattr(prepare, "piece_bytes", 1 << 20)))
        self.depth = max(2, min(256, int(max_memory_mb * 2**20) // (workers * piece_bytes)))
        self.context = multiprocessing.get_context("spawn")
        self.deaths_in_a_row = 0
        self.crashed: dict[int, str] = {}  # files that killed their worker: failed when their turn comes
        self.skip: dict[int, int] = {}  # messages of a file already handed on, to drop when a new worker resends them
        self.processes: list = [None] * workers
        self.queues: list = [None] * workers
        self.current: list = [None] * workers
        for worker in range(workers):
            self._start(worker, first=worker)

    def _start(self, worker: int, first: int) -> None:
        tasks = [(index, self.items[index]) for index in range(first, len(self.items), self.workers)
                 if index not in self.crashed]
        out = self.context.Queue(maxsize=self.depth)
        current = self.context.RawValue("q", -1)
        process = self.context.Process(target=_worker_main, args=(self.prepare, tasks, out, current), daemon=True,
                                       name=f"bat-prepare-{worker}")
        with _worker_environment(self.prepare):
            process.start()
        # This process never puts into the queue: closing its copy of the pipe's write end means a worker
        # killed in the middle of a message leaves a read that ends (EOFError), not one that waits forever.
        out._writer.close()
        self.processes[worker], self.queues[worker], self.current[worker] = process, out, current

    def __iter__(self) -> Iterator[tuple[int, Message]]:
        for index in range(len(self.items)):
            if index in self.crashed:
                yield index, Failure(self.crashed.pop(index))
                continue
            worker = index % self.workers
            handed = 0
            while True:
                message = self._next(worker, index, handed)
                handed += 1
                yield index, message
                if isinstance(message, (FileInfo, Failure)):
                    break

    def _next(self, worker: int, index: int, handed: int) -> Message:
        while True:
            try:
                payload = self.queues[worker].get(timeout=POLL_SECONDS)
            except queue.Empty:
                if self.processes[worker].is_alive():
                    continue
                try:  # it may have written its last words just before exiting
                    payload = self.queues[worker].get(timeout=POLL_SECONDS)
                except (queue.Empty, EOFError, OSError):
                    payload = None
            except (EOFError, OSError):  # the worker died while writing a message
                payload = None
            if payload is None:
                self.processes[worker].join(timeout=5)
                failure = self._replace(worker, index, handed)
                if failure is not None:
                    return failure
                continue
            self.deaths_in_a_row = 0
            try:
                got_index, message = pickle.loads(payload)
            except Exception as error:  # cut short: treat as the death it comes from
                log.debug("unreadable message from worker %d: %s", worker, error)
                self.processes[worker].kill()
                continue
            if got_index != index:
                raise RuntimeError(f"worker {worker} sent file {got_index} while file {index} was expected")
            if self.skip.get(index, 0) > 0:  # resent by a new worker: already handed on
                self.skip[index] -= 1
                continue
            return message

    def _replace(self, worker: int, index: int, handed: int) -> Failure | None:
        """A worker died. The file it was on fails; files whose messages were still in its queue's buffer
        (lost with it) are prepared again by a new worker, without repeating what was already handed on."""
        exitcode = self.processes[worker].exitcode
        on = self.current[worker].value
        crashed = index if on < index else on
        log.warning("decoding worker %d died (exit code %s) on %s; starting another for the rest",
                    worker, exitcode, self.items[crashed].file_name)
        self._stop(worker)
        self.deaths_in_a_row += 1
        if self.deaths_in_a_row >= MAX_DEATHS_IN_A_ROW:
            raise RunStopped(f"{self.deaths_in_a_row} worker processes died in a row with nothing received from them (last exit "
                             f"code {exitcode}): they cannot run here; rerun with --num-workers 0 (decoding in this "
                             "process), or see the messages above")
        reason = (f"the process decoding this file died (exit code {exitcode}): the file may crash the decoder, or "
                  "memory ran out")
        if crashed == index:
            if index + self.workers < len(self.items):
                self._start(worker, first=index + self.workers)
            return Failure(reason)
        self.crashed[crashed] = reason
        self.skip[index] = handed
        self._start(worker, first=index)
        return None

    def _stop(self, worker: int) -> None:
        process, out = self.processes[worker], self.queues[worker]
        if process is not None and process.is_alive():
            process.terminate()
        if process is not None:
            process.join(timeout=5)
        if out is not None:
            out.cancel_join_thread()
            out.close()

    def close(self) -> None:
        for worker in range(self.workers):
            self._stop(worker)


@contextmanager
def _worker_environment(prepare: Prepare) -> Iterator[None]:
    """No re-run of the parent's main script in a worker (a console script, pytest: none of it is needed to
    unpickle a prepare defined in a module; one defined in ``__main__`` keeps the usual behaviour).

    Workers keep the parent's BLAS threading: numpy's results depend on its thread count, and a worker
    must compute what this process would."""
    try:  # a worker starts ignoring Ctrl-C (inherited across exec), so a terminal's Ctrl-C during its start-up
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # is the parent's alone
    except ValueError:  # not the main thread: leave signals alone
        interrupt = None
    main = sys.modules.get("__main__")
    hide_main = main is not None and getattr(type(prepare), "__module__", "__main__") != "__main__" \
        and getattr(prepare, "__module__", None) != "__main__"
    saved_main = {name: main.__dict__[name] for name in ("__spec__", "__file__") if hide_main and name in main.__dict__}
    if "__spec__" in saved_main:
        main.__spec__ = None
    main.__dict__.pop("__file__", None) if "__file__" in saved_main else None
    try:
        yield
    finally:
        main.__dict__.update(saved_main) if main is not None else None
        if interrupt is not None:
            signal.signal(signal.SIGINT, interrupt)
