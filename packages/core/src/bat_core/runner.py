"""One flow for every per-file command: recording -> pieces -> batches -> model -> per-file outputs.

A strategy gives three things:

- ``prepare(item)``: a picklable callable, numpy only (it runs in worker processes), that
  yields a recording's ``Piece`` s one by one and then one ``FileInfo``. ``AudioPrepare``
  is the usual one: it reads the file in blocks, converts them (time expansion, resampling)
  and hands the converted stream to a ``PieceMaker`` (windows, mel frames, ...).
- an ``Encoder`` (optional): runs a batch of pieces through a model in this process.
- a ``Sink``: receives each file's outputs in piece order, then the file's end or failure.
  ``run_to_store`` wires a sink to the representation store.

The runner owns the rest: worker processes (``bat_core.workers``), batches of equal piece
length (a piece's padding never depends on its batch mates), a model call that fails (its
batch is halved on out-of-memory and retried piece by piece; only a piece that fails alone
fails its file), outputs handed back per file in order, progress and accounting.

Memory is bounded by construction: pieces are bounded in size, the queues between workers
and this process hold at most ``max_memory_mb`` of them, a batch is bounded by the encoder,
and sinks write outputs as they come.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bat_core.batching import LengthBatcher
from bat_core.dataset import DatasetItem
from bat_core.errors import AudioError, BatError, RunStopped
from bat_core.time_expansion import SignalConversion, SignalConverter, TimeExpansion, warn_band_loss

log = logging.getLogger(__name__)

DEFAULT_MAX_MEMORY_MB = 256  # with 2 busy workers at 512, the queues alone held ~450 MB of a 10-minute file


@dataclass
class Piece:
    """One unit of model input (a window of samples, a block of frames) of one file."""

    data: np.ndarray
    length: int = 0  # pieces of equal length share a batch
    meta: Any = None  # whatever the strategy needs to put the output back (e.g. a windows.Span)
    file: int = -1  # set by the runner: the file's position in the run
    index: int = -1  # set by the runner: the piece's position in its file
    clip: Any = None  # per-call runs: the ``bat_core.calls.Clip`` (call) the piece belongs to


@dataclass
class FileInfo:
    """Sent by ``prepare`` after a file's last piece: what the file was and what was done to it."""

    seconds: float
    conversion: SignalConversion | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Failure:
    """Sent instead of the rest of a file when it cannot be used; ``reason`` is for a person."""

    reason: str


Message = Piece | FileInfo | Failure
Prepare = Callable[[DatasetItem], Iterator[Piece | FileInfo]]


class PieceMaker(Protocol):
    """Turns one recording's converted sample stream into pieces; picklable, numpy only."""

    piece_bytes: int  # the largest piece it makes: sizes the queues

    def __call__(self, blocks: Iterator[np.ndarray]) -> Iterator[Piece]: ...


class Encoder(Protocol):
    """A model over batches of pieces, in the runner's process.

    Returns the outputs (one per piece) or a callable that returns them: a GPU encoder
    launches the work and the runner collects it after launching the next batch, so the
    host never waits on the device between batches.
    """

    max_items: int
    max_length: int | None  # summed piece lengths per batch

    def __call__(self, batch: list[Piece]) -> list[Any] | Callable[[], list[Any]]: ...


class Sink(Protocol):
    def add(self, item: DatasetItem, piece: Piece, output: Any) -> None: ...
    def done(self, item: DatasetItem, info: FileInfo) -> None: ...
    def fail(self, item: DatasetItem, reason: str) -> None: ...


@dataclass(frozen=True)
class AudioPrepare:
    """Read a recording in blocks, convert it for the model, cut it into pieces (all streamed)."""

    pieces: PieceMaker
    target_rate: int | None  # None: the recording's own rate
    expansion: TimeExpansion = field(default_factory=TimeExpansion)

    @property
    def piece_bytes(self) -> int:
        return self.pieces.piece_bytes

    def __call__(self, item: DatasetItem) -> Iterator[Piece | FileInfo]:
        from bat_core.audio import BLOCK_FRAMES, audio_info, read_blocks

        info = audio_info(item.path)
        converter = SignalConverter(info.sample_rate, self.target_rate, self.expansion)

        # read so that one block's converted output stays about one block long, even for a low-rate file
        # that conversion upsamples many times (a corrupt header saying 100 Hz must not cost gigabytes)
        block_frames = max(256, min(BLOCK_FRAMES, int(BLOCK_FRAMES * converter.expanded_rate / converter.target_rate)))
        yield from self.pieces(converter.stream(read_blocks(item.path, block_frames)))
        yield FileInfo(seconds=converter.samples_in / info.sample_rate, conversion=converter.conversion,
                       extra={"channels": info.channels})


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out (never what it computes: outputs do not depend on these)."""

    workers: int = 2  # decoding processes; 0 decodes in this process
    max_memory_mb: int = DEFAULT_MAX_MEMORY_MB  # pieces in flight between workers and the model
    show_progress: bool = True
    description: str = ""
    ray: Any = None  # a ``bat_core.ray_engine.RayOptions``: run on Ray (``--engine ray``) instead of local processes


def failure_reason(error: BaseException) -> str:
    """One line a person can act on."""
    if isinstance(error, (AudioError, BatError)):
        return str(error)
    if isinstance(error, MemoryError):
        return "out of memory while preparing this file"
    return f"{type(error).__name__}: {error}"


def run(items: Sequence[DatasetItem], prepare: Prepare, sink: Sink, encoder: Encoder | None = None,
        options: RunOptions = RunOptions()) -> None:
    """Every item through ``prepare`` (-> ``encoder``) -> ``sink``. One bad file is one ``sink.fail``."""
    from bat_core.workers import messages

    _Run(items, sink, encoder, options).drive(messages(items, prepare, options))


def _is_out_of_memory(error: BaseException) -> bool:
    return type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower()


class _Failed:
    def __init__(self, reason: str):
        self.reason = reason


@dataclass
class _FileState:
    received: int = 0
    delivered: int = 0
    outputs: dict[int, Any] = field(default_factory=dict)
    info: FileInfo | None = None
    closed: bool = False


class _Run:
    def __init__(self, items: Sequence[DatasetItem], sink: Sink, encoder: Encoder | None, options: RunOptions):
        self.items, self.sink, self.encoder, self.options = items, sink, encoder, options
        self.files: dict[int, _FileState] = {}
        self.batcher = LengthBatcher(encoder.max_items, encoder.max_length) if encoder is not None else None
        self.in_flight: tuple[list[Piece], Any] | None = None

    def drive(self, messages: Iterable[tuple[int, Message]]) -> None:
        from bat_core.progress import progress_bar

        self.bar = progress_bar(len(self.items), self.options.description or "files", self.options.show_progress)
        try:
            for index, message in messages:
                state = self.files.setdefault(index, _FileState())
                if state.closed:
                    continue
                if isinstance(message, Piece):
                    message.file, message.index = index, state.received
                    state.received += 1
                    if self.batcher is None:
                        self._deliver(message, message.data)
                    else:
                        for batch in self.batcher.add(message):
                            self._launch(batch)
                elif isinstance(message, FileInfo):
                    state.info = message
                    if message.conversion is not None:
                        warn_band_loss(message.conversion)
                    self._maybe_done(index)
                else:
                    self._fail(index, message.reason)
            if self.batcher is not None:
                for batch in self.batcher.flush():
                    self._launch(batch)
                self._collect()
            unfinished = [i for i, state in self.files.items() if not state.closed]
            for index in unfinished:  # cannot happen unless a prepare forgot its FileInfo: say so, never hang
                self._fail(index, "internal error: the file's pieces ended without its FileInfo")
        finally:
            self.bar.close()

    # -- model --------------------------------------------------------------
    def _launch(self, batch: list[Piece]) -> None:
        batch = [piece for piece in batch if not self.files[piece.file].closed]
        if not batch:
            return
        try:
            handle = self.encoder(batch)
        except RunStopped:
            raise
        except Exception as error:
            self._hand_back(batch, self._retry(batch, error))
            return
        self._collect()
        self.in_flight = (batch, handle)

    def _collect(self) -> None:
        if self.in_flight is None:
            return
        batch, handle = self.in_flight
        self.in_flight = None
        try:
            outputs = handle() if callable(handle) else handle
        except RunStopped:
            raise
        except Exception as error:
            outputs = self._retry(batch, error)
        self._hand_back(batch, outputs)

    def _retry(self, batch: list[Piece], error: Exception) -> list[Any]:
        if _is_out_of_memory(error) and len(batch) > 1:
            self.batcher.shrink()
            log.warning("out of memory on a batch of %d pieces: halving batches and retrying", len(batch))
            half = len(batch) // 2
            return self._alone(batch[:half]) + self._alone(batch[half:])
        if len(batch) == 1:
            log.debug("model failed on a piece", exc_info=error)
            what = "out of memory even on this file's piece alone" if _is_out_of_memory(error) else failure_reason(error)
            return [_Failed(f"the model failed on this file: {what}")]
        log.info("model failed on a batch (%s); retrying its %d pieces one by one", failure_reason(error), len(batch))
        return [output for piece in batch for output in self._alone([piece])]

    def _alone(self, batch: list[Piece]) -> list[Any]:
        try:
            handle = self.encoder(batch)
            outputs = handle() if callable(handle) else handle
            return list(outputs)
        except RunStopped:
            raise
        except Exception as error:
            return self._retry(batch, error)

    def _hand_back(self, batch: list[Piece], outputs: Sequence[Any]) -> None:
        if len(outputs) != len(batch):
            raise RuntimeError(f"encoder returned {len(outputs)} outputs for {len(batch)} pieces")
        for piece, output in zip(batch, outputs):
            if isinstance(output, _Failed):
                self._fail(piece.file, output.reason)
            else:
                self._deliver(piece, output)

    # -- per file -------------------------------------------------------------
    def _deliver(self, piece: Piece, output: Any) -> None:
        state = self.files[piece.file]
        if state.closed:
            return
        state.outputs[piece.index] = (piece, output)
        item = self.items[piece.file]
        while state.delivered in state.outputs:
            ready, ready_output = state.outputs.pop(state.delivered)
            try:
                self.sink.add(item, ready, ready_output)
            except RunStopped:
                raise
            except Exception as error:
                self._fail(piece.file, failure_reason(error))
                return
            state.delivered += 1
        self._maybe_done(piece.file)

    def _maybe_done(self, index: int) -> None:
        state = self.files[index]
        if state.closed or state.info is None or state.delivered < state.received:
            return
        try:
            self.sink.done(self.items[index], state.info)
        except RunStopped:
            raise
        except Exception as error:
            self._fail(index, failure_reason(error))
            return
        state.closed = True
        self.bar.update(1)

    def _fail(self, index: int, reason: str) -> None:
        state = self.files.setdefault(index, _FileState())
        if state.closed:
            return
        state.closed = True
        state.outputs.clear()
        if self.batcher is not None:
            self.batcher.drop(index)
        self.sink.fail(self.items[index], reason)
        self.bar.update(1)


class Assembler(Protocol):
    """Puts one file's outputs together in the store (main process): one per file."""

    def add(self, piece: Piece, output: Any) -> None: ...
    def finish(self, info: FileInfo) -> dict: ...  # fields of the file's manifest row: frames_per_second, extra


class AppendOutputs:
    """The usual assembler: each piece's output appended along time, trimmed to the piece's own share
    when the piece is a window (``meta`` a ``windows.Span``, outputs every ``stride`` input positions)."""

    def __init__(self, output, frames_per_second: Callable[[FileInfo], float] | None = None, *,
                 stride: float | None = None, fortran: bool = False, extra: dict | None = None):
        self.output, self.frames_per_second, self.stride, self.fortran = output, frames_per_second, stride, fortran
        self.extra = extra or {}

    def add(self, piece: Piece, output: Any) -> None:
        from bat_core.windows import Span

        if self.stride is not None and isinstance(piece.meta, Span):
            output = output[piece.meta.owned(len(output), self.stride)]
        self.output.append(output, fortran=self.fortran)

    def finish(self, info: FileInfo) -> dict:
        fps = self.frames_per_second(info) if self.frames_per_second is not None else None
        return {"frames_per_second": fps, "extra": self.extra}


class StoreSink:
    """A sink that writes through a ``RepresentationStore``: outputs as they come, the row when a file ends."""

    def __init__(self, store, assembler: Callable[[DatasetItem, Any], Assembler]):
        self.store, self.assembler = store, assembler
        self.open: dict[str, tuple[Any, Assembler]] = {}

    def _opened(self, item: DatasetItem) -> tuple[Any, Assembler]:
        if item.file_name not in self.open:
            output = self.store.open(item)
            self.open[item.file_name] = (output, self.assembler(item, output))
        return self.open[item.file_name]

    def add(self, item: DatasetItem, piece: Piece, output: Any) -> None:
        self._opened(item)[1].add(piece, output)

    def done(self, item: DatasetItem, info: FileInfo) -> None:
        output, assembler = self._opened(item)
        try:
            fields = assembler.finish(info)
            self.store.commit(output, seconds=info.seconds, conversion=info.conversion, **fields)
        except BaseException:
            output.discard()
            raise
        finally:
            self.open.pop(item.file_name, None)

    def fail(self, item: DatasetItem, reason: str) -> None:
        opened = self.open.pop(item.file_name, None)
        if opened is not None:
            opened[0].discard()
        self.store.fail(item, reason)


def run_to_store(items: Sequence[DatasetItem], store, prepare: Prepare, assembler: Callable[[DatasetItem, Any], Assembler],
                 encoder: Encoder | None = None, options: RunOptions = RunOptions(), overwrite: bool = False):
    """The whole per-file command: skip what is done, run the rest, write every file's row; a RunSummary."""
    todo = store.begin(list(items), overwrite=overwrite)
    with store:
        if options.ray is not None:
            from bat_core.ray_engine import run_on_ray

            run_on_ray(todo, store, prepare, assembler, encoder, options)
        else:
            run(todo, prepare, StoreSink(store, assembler), encoder, options)
        return store.finish()
