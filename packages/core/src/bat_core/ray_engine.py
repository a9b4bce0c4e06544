"""``--engine ray``: the runner's flow on a Ray cluster (a local one on this machine's cores by default).

Ray Data does the scheduling (we write none): CPU tasks run the strategy's ``prepare`` on each
file (decode, time expansion, pieces); a pool of actors (``ActorPoolStrategy``), each holding the
model once and ``gpus_per_worker`` GPUs, runs the same loop as the local engine (``runner._Run``:
batches of equal piece length, out-of-memory halving, one bad file one failed row) over a few
files at a time and writes them through its own copy of the store: outputs atomic per file, rows
in the actor's own journal, which the driver's ``store.finish`` folds into the one manifest.

- Resume: the driver asks the store for the files still to do before the dataset is built.
- Faults: a task or actor that dies is retried by Ray; a file whose block still could not be
  done is a failed row (never a failed job); an error about the run itself (a full disk) stops
  the run as locally. A driver killed mid-run leaves the actors' journals: the next run folds
  them and does only what is missing.
- Batches: an actor's call ends by flushing its batcher, so a call's files should share piece lengths:
  the files go out largest first (bytes on disk, a stand-in for duration within a corpus), so
  neighbours, and the tails of their last windows, are alike. On an H200 with 8-file calls in the
  order listed, the forward ran 6x the local engine's batches at ~15 ms each and that bound the run.
- Memory: a file travels between the stages as one row of its pieces; a file whose pieces pass
  ``max_memory_mb`` is not shipped but streamed again inside the actor, so no row grows with a
  recording's length beyond that.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bat_core.dataset import DatasetItem
from bat_core.errors import BatError, MissingExtraError, OutputError
from bat_core.runner import Encoder, Piece, Prepare, RunOptions, StoreSink, _Run

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'bat-core[ray]'"
FILES_PER_CALL = 8  # files an actor takes at a time: with call_order, enough pieces to fill batches across files


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run goes; never what it computes."""

    address: str | None = None  # None: a local Ray on this machine's cores; "auto" or ray://...: a cluster
    workers: int | None = None  # model actors; None: one per GPU share, or one per cpus_per_worker without GPUs
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    files_per_call: int = FILES_PER_CALL


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(f"--engine ray needs Ray Data ({error}): {INSTALL_HINT}") from error
    return ray


def ensure_ray(options: RayOptions) -> None:
    """Connect to ``options.address`` or start a local Ray once per process (a notebook's own ``ray.init`` is kept)."""
    ray = require_ray()
    if ray.is_initialized():
        return
    if options.address not in (None, "auto", "local"):
        _check_reachable(options.address)
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if options.address is None:
        kwargs["num_cpus"] = os.cpu_count() or 1
    try:
        ray.init(address=options.address, **kwargs)
    except ConnectionError as error:
        raise BatError(f"cannot connect to the Ray cluster at --ray-address {options.address}: {error}") from error


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """``ray.init`` retries a cluster that is not there for minutes, printing only its own retry lines; a
    plain connection to the head's port says so in seconds (exit 2)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise BatError(f"--ray-address {address}: expected HOST:PORT (the head's GCS port, 6379 by default), "
                       "ray://HOST:PORT (Ray Client, 10001 by default) or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise BatError(f"cannot reach the Ray cluster at --ray-address {address} ({error}): is `ray start --head` "
                       "running there, and is that its port?") from error


def _actors(options: RayOptions) -> int:
    """The pool's size. With GPUs the files are decoded by CPU tasks beside the actors, so the actors' CPUs
    leave at least one free: without it Ray Data waits for a CPU forever (seen with 4 actors of 0.25 GPU on
    2 CPUs). A size given with ``--ray-workers`` is kept (an autoscaling cluster grows to it), with a warning."""
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    decoding = 1 if options.gpus_per_worker > 0 else 0  # without GPUs each actor decodes its own files
    fits = int((cpus - decoding) // options.cpus_per_worker)
    if options.workers is not None:
        if options.workers > fits:
            log.warning("--ray-workers %d: the Ray cluster has %g CPUs, room for %d actors of --cpus-per-worker %g%s; "
                        "Ray waits until more join (an autoscaling cluster adds them, a fixed one never does)",
                        options.workers, cpus, max(fits, 0), options.cpus_per_worker,
                        " with one CPU left to decode" if decoding else "")
        return options.workers
    if fits < 1:
        raise BatError(f"the Ray cluster has {cpus:g} CPUs: not enough for one actor of --cpus-per-worker "
                       f"{options.cpus_per_worker:g}{' and one CPU to decode' if decoding else ''}")
    if options.gpus_per_worker > 0:
        if gpus < options.gpus_per_worker:
            raise BatError(f"--gpus-per-worker {options.gpus_per_worker}: the Ray cluster has {gpus:g} GPUs")
        wanted = max(1, int(gpus // options.gpus_per_worker))
        if wanted > fits:
            log.warning("%d GPU actors would take every CPU of the Ray cluster (%g): running %d, leaving CPUs to "
                        "decode", wanted, cpus, fits)
        return min(wanted, fits)
    return fits


def check_visible(derived: Path) -> None:
    """Every node must see ``derived`` (the same folder, not one of the same name): a file written here is
    read back on each alive node; exit 2 naming the first node that cannot."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    probe = derived / f".ray-visible-{token}"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text(token)
    try:
        @ray.remote(num_cpus=0)
        def sees(path: str, expected: str) -> bool:
            try:
                return Path(path).read_text() == expected and os.access(Path(path).parent, os.W_OK)
            except OSError:
                return False

        nodes = [node for node in ray.nodes() if node.get("Alive")]
        answers = ray.get([sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                           .remote(str(probe), token) for node in nodes])
        for node, seen in zip(nodes, answers):
            if not seen:
                raise OutputError(f"--derived {derived} is not visible (or not writable) on Ray node "
                                  f"{node.get('NodeManagerAddress')}: put it on storage every node mounts at the "
                                  "same path")
    finally:
        probe.unlink(missing_ok=True)


class _PrepareFile:
    """Ray task body: one file's messages, pickled; ``inline`` when they pass ``cap_bytes`` (the actor streams it)."""

    def __init__(self, prepare: Prepare, cap_bytes: int):
        self.prepare, self.cap_bytes = prepare, cap_bytes

    def __call__(self, row: dict) -> dict:
        from bat_core.workers import _prepared

        item = pickle.loads(row["item"])
        messages, size = [], 0
        for _, message in _prepared(0, item, self.prepare):
            messages.append(message)
            size += message.data.nbytes if isinstance(message, Piece) else 0
            if size > self.cap_bytes:
                return {"item": row["item"], "inline": True, "messages": b""}
        return {"item": row["item"], "inline": False,
                "messages": pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)}


class _ResultSink(StoreSink):
    """A store sink that also notes each file's outcome for the driver's summary."""

    def __init__(self, store, assembler):
        super().__init__(store, assembler)
        self.results: list[dict] = []

    def done(self, item: DatasetItem, info) -> None:
        summary = self.store._summary
        stale, band = summary.stale, summary.band_warnings
        super().done(item, info)
        self.results.append({"file_name": item.file_name, "status": "ok", "reason": "",
                             "stale": summary.stale > stale, "band_warning": summary.band_warnings > band})

    def fail(self, item: DatasetItem, reason: str) -> None:
        super().fail(item, reason)
        self.results.append({"file_name": item.file_name, "status": "failed", "reason": reason,
                             "stale": False, "band_warning": False})


class _EncodeFiles:
    """Ray actor: the model loaded once; each call runs the local loop over a few prepared files."""

    def __init__(self, store, prepare: Prepare, assembler: Callable, encoder: Encoder | None):
        self.store, self.prepare, self.assembler, self.encoder = store, prepare, assembler, encoder
        self.store.join_run(f"ray-{uuid.uuid4().hex[:12]}")

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from bat_core.workers import _prepared

        items = [pickle.loads(blob) for blob in batch["item"]]

        def messages() -> Iterator[tuple[int, Any]]:
            for index, (inline, blob) in enumerate(zip(batch["inline"], batch["messages"])):
                if inline:
                    yield from _prepared(index, items[index], self.prepare)
                else:
                    for message in pickle.loads(blob):
                        yield index, message

        sink = _ResultSink(self.store, self.assembler)
        _Run(items, sink, self.encoder, RunOptions(workers=0, show_progress=False)).drive(messages())
        return pd.DataFrame(sink.results, columns=["file_name", "status", "reason", "stale", "band_warning"]).assign(
            stale_keys=",".join(self.store._summary.stale_keys))


def call_order(items: Sequence[DatasetItem]) -> list[DatasetItem]:
    """``items`` largest first by bytes on disk (missing files last), so each actor call gets files of alike
    length whose pieces share batches (the call flushes its batcher); largest first also leaves the short
    files to even out the actors' ends. Bytes, not the header's duration: one stat per file, no open."""

    def size(item: DatasetItem) -> int:
        try:
            return item.path.stat().st_size
        except OSError:
            return -1

    return sorted(items, key=size, reverse=True)


def run_on_ray(todo: Sequence[DatasetItem], store, prepare: Prepare, assembler: Callable, encoder: Encoder | None,
               options: RunOptions) -> None:
    """``todo`` through prepare tasks -> model actors -> the store; the driver tallies rows and fails lost files."""
    from bat_core.progress import progress_bar

    ray_options: RayOptions = options.ray
    if not todo:
        return
    ensure_ray(ray_options)
    check_visible(store.paths.derived)
    import ray.data

    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its plan and timing lines, at every run
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars, context.max_errored_blocks  # a notebook's own settings come back after
    context.enable_progress_bars = False
    context.max_errored_blocks = -1  # a block that fails after Ray's retries is reported per file below, not fatal
    cap_bytes = options.max_memory_mb * 2**20 // 4  # 0: every file is decoded in the actor
    rows = [{"item": pickle.dumps(item)} for item in call_order(todo)]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 4 * (os.cpu_count() or 1))))
    # without GPUs Ray fuses this map into the actors (equal CPU requests): each actor decodes its own files
    # on its own cores; with GPUs the decoding runs as separate CPU tasks feeding the GPU actors
    cpus = ray_options.cpus_per_worker if not ray_options.gpus_per_worker else 1
    dataset = dataset.map(_PrepareFile(prepare, cap_bytes), num_cpus=cpus)
    actors = _actors(ray_options)
    dataset = dataset.map_batches(
        _EncodeFiles, fn_constructor_args=(store.for_worker(), prepare, assembler, encoder),
        compute=ray.data.ActorPoolStrategy(size=actors), batch_size=ray_options.files_per_call,
        num_gpus=ray_options.gpus_per_worker or None, num_cpus=ray_options.cpus_per_worker, batch_format="pandas")
    reported: set[str] = set()
    bar = progress_bar(len(todo), options.description or "files", options.show_progress)
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
            for row in batch.itertuples(index=False):
                reported.add(row.file_name)
                store.tally(row.file_name, row.status, row.reason, stale=bool(row.stale),
                            stale_keys=[key for key in row.stale_keys.split(",") if key],
                            band_warning=bool(row.band_warning))
                bar.update(1)
    except Exception as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, BatError):  # about the run itself (a full disk): stop as the local engine does
            raise cause from error
        raise
    finally:
        bar.close()
        context.enable_progress_bars, context.max_errored_blocks = saved
    for item in todo:
        if item.file_name not in reported:
            store.fail(item, "the Ray worker handling this file died and its retries failed too")


def gather_on_ray(items: Sequence[DatasetItem], make_worker: Callable[[], Any], options: RunOptions
                  ) -> tuple[list[Any], list[DatasetItem]]:
    """For work whose result is not per-file outputs (a k-means sample): a pool of Ray actors, each made by
    ``make_worker()`` (an object with ``run(items)`` and ``result()``), takes the files a few at a time
    (Ray's ``ActorPool``); returns each actor's ``result()`` and the files of calls lost with a dead actor."""
    ray_options: RayOptions = options.ray
    ensure_ray(ray_options)
    import ray
    from ray.util import ActorPool

    from bat_core.progress import progress_bar

    remote = ray.remote(num_cpus=ray_options.cpus_per_worker, num_gpus=ray_options.gpus_per_worker or None)(_Gathering)
    actors = [remote.remote(make_worker) for _ in range(min(_actors(ray_options), max(1, len(items))))]
    chunks = [list(items[i:i + ray_options.files_per_call]) for i in range(0, len(items), ray_options.files_per_call)]
    lost: list[DatasetItem] = []
    bar = progress_bar(len(items), options.description or "files", options.show_progress)
    pool = ActorPool(actors)
    for index, chunk in enumerate(chunks):
        pool.submit(lambda actor, value: actor.run.remote(*value), (index, chunk))
    try:
        while pool.has_next():
            try:
                index = pool.get_next_unordered()
                bar.update(len(chunks[index]))
            except ray.exceptions.RayActorError as error:  # the chunk's files never reached a result
                log.warning("a Ray worker died: %s", error)
        results = []
        for actor in actors:
            try:
                results.append(ray.get(actor.result.remote()))
            except ray.exceptions.RayActorError:
                pass
        done = {name for _, ran in results for name in ran}
        lost = [item for item in items if item.file_name not in done]
    finally:
        bar.close()
        for actor in actors:
            ray.kill(actor)
    return results, lost


class _Gathering:
    """The actor behind ``gather_on_ray``: a worker, and the names of the files it ran (to find lost ones)."""

    def __init__(self, make_worker: Callable[[], Any]):
        self.worker, self.ran = make_worker(), []

    def run(self, index: int, items: list[DatasetItem]) -> int:
        self.worker.run(items)
        self.ran.extend(item.file_name for item in items)
        return index

    def result(self) -> tuple[Any, list[str]]:
        return self.worker.result(), self.ran
