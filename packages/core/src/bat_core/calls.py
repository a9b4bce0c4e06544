"""Per-call encoding: a strategy encodes each call (plus a little context) alone, outputs keyed by call.

A box table (``bat-core segment``'s, calls.csv, human boxes: the schema of ``segments.table``)
says where the calls are. ``CallPrepare`` wraps a strategy's ``AudioPrepare``: for each call it
reads only the call's span plus ``context_s`` on each side (a seek, never the whole file),
widened with the audio around it to the strategy's shortest input (never padded with zeros),
converts it like a recording (time expansion, resampling) and cuts it with the strategy's own
piece maker. ``CallAssembler`` gives each call a fresh strategy assembler, so a call's output is
what the strategy makes of a recording that is that span. A file's output is its calls' outputs
one after another along axis 0, plus ``<output>.calls.npy``: one row per call, ``INDEX_COLUMNS``
(times in seconds of the original recording). Manifest rows stay per file.

``write_calls_table`` folds a store's current outputs (ok rows made with its settings, of the
recordings annotations.csv lists now, whatever subset or shard the run covered) into
``derived/calls/<representation>.parquet``, one row per call with its outputs in list columns of
their own dtype::

    pd.read_parquet("derived/calls/w2v_kmeans-calls.parquet")
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bat_core.dataset import DatasetItem
from bat_core.errors import AudioError, BatError, DatasetError
from bat_core.paths import ProjectPaths, tagged
from bat_core.runner import Assembler, AudioPrepare, FileInfo, Piece
from bat_core.time_expansion import SignalConversion, SignalConverter

INDEX_NAME = "calls"
INDEX_COLUMNS = ("call_index", "start_time_s", "end_time_s", "encoded_start_s", "encoded_end_s", "first_row", "rows")
DEFAULT_CONTEXT_S = 0.005  # a few ms each side: a call's onset and echo tail, not the next call (10-100 ms away)
MAX_CALL_S = 10.0  # a longer "call" is a table of something else; it would also be held whole while converted
DETECTED = "detected"  # --segments detected: the table `bat-core segment` wrote with its default settings
MAX_CALL_INDEX = 2**53  # the index file holds float64: exact up to here
TAG = "calls"  # per-call outputs are their own representation: <name>-calls, beside the whole-file ones


def per_call_tag(tag: str | None, selection: CallSelection | None = None, *, per_call: bool | None = None) -> str | None:
    """The tag a run writes under: ``tag`` for whole recordings, ``<tag>-calls`` (or ``calls``) per call, so
    per-call outputs never overwrite whole-file ones."""
    reserved = bool(tag) and (tag == TAG or tag.endswith(f"-{TAG}"))
    if not (per_call if per_call is not None else selection is not None):
        if reserved:
            raise BatError(f"--tag {tag}: tags ending in '{TAG}' are kept for per-call runs (--segments); choose another")
        return tag
    if reserved:
        return tag
    return tagged(tag, TAG) if tag else TAG


@dataclass(frozen=True)
class CallSpan:
    call_index: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class CallSelection:
    """Which calls to encode, per file name, and how much context goes with each."""

    spans: Mapping[str, tuple[CallSpan, ...]]
    context_s: float
    source: str  # the table's path, for people (not in the settings: moving the table changes nothing)
    fingerprint: str  # sha256 of the table's bytes

    def settings(self) -> dict:
        """What makes per-call outputs differ (goes into the store's config hash)."""
        return {"segments_sha256": self.fingerprint, "context_s": self.context_s}

    @property
    def calls(self) -> int:
        return sum(len(spans) for spans in self.spans.values())


def resolve_segments(value: str, paths: ProjectPaths) -> Path:
    """``--segments``: a box table's path, or ``detected`` for `bat-core segment`'s default table."""
    if value == DETECTED:
        from bat_core.segments.command import segments_path

        path = segments_path(paths)
        if not path.is_file():
            derived = "" if paths.derived == paths.root / "derived" else f" --derived {paths.derived}"
            raise DatasetError(f"--segments detected: no table at {path}; run `bat-core segment --root "
                               f"{paths.root}{derived}` first (or pass a box table's path)")
        return path
    return Path(value)


def load_selection(path: str | Path, context_s: float = DEFAULT_CONTEXT_S) -> CallSelection:
    """The calls of a box table (CSV or Parquet, the columns of shared/bats/calls.csv), checked."""
    from bat_core.segments.table import FILE, read_boxes

    if not (math.isfinite(context_s) and 0 <= context_s <= 1):
        raise ValueError(f"context must be between 0 and 1 s, got {context_s}")
    path = Path(path)
    table = numbered_boxes(read_boxes(path), path)
    spans = {name: tuple(CallSpan(int(c), float(s), float(e)) for c, s, e in
                         zip(group.call_index, group.start_time_s, group.end_time_s))
             for name, group in table.groupby(FILE, sort=True)}
    return CallSelection(spans, float(context_s), str(path), _sha256(path))


def numbered_boxes(table: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """A box table (``read_boxes``) with a checked ``call_index`` (its own, or numbered per file by start time),
    calls of at most ``MAX_CALL_S``, sorted by file and time: how per-call encoding and evaluation name calls."""
    from bat_core.segments.table import FILE

    if "call_index" in table.columns:
        index = pd.to_numeric(table["call_index"], errors="coerce")
        if index.isna().any() or (index % 1 != 0).any() or (index < 0).any() or (index >= MAX_CALL_INDEX).any():
            raise DatasetError(f"{path}: call_index must be whole numbers from 0 to {MAX_CALL_INDEX - 1}")
        table["call_index"] = index.astype(np.int64)
        repeated = table.duplicated([FILE, "call_index"])
        if repeated.any():
            first = table[repeated].iloc[0]
            raise DatasetError(f"{path}: call_index {first['call_index']} appears twice for {first[FILE]}")
    else:
        table = table.sort_values([FILE, "start_time_s"], kind="stable")
        table["call_index"] = table.groupby(FILE).cumcount().astype(np.int64)
    long = table[(table.end_time_s - table.start_time_s) > MAX_CALL_S]
    if len(long):
        row = long.iloc[0]
        raise DatasetError(f"{path}: a box of {row.end_time_s - row.start_time_s:.1f} s ({row[FILE]}, call "
                           f"{row.call_index}); per-call encoding takes calls up to {MAX_CALL_S:g} s: is this a table "
                           "of calls?")
    return table.sort_values([FILE, "start_time_s", "call_index"], kind="stable")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Clip:
    """What a piece of per-call input belongs to (``Piece.clip``)."""

    position: int  # the call's position among its file's selected calls
    call_index: int
    start_s: float  # the call's box, seconds of the original recording
    end_s: float
    encoded_start_s: float  # the span actually encoded (context and widening included)
    encoded_end_s: float
    conversion: SignalConversion


def encoded_bounds(span: CallSpan, sample_rate: int, frames: int, context_s: float, need: int,
                   least: int | None = None) -> tuple[int, int]:
    """Samples ``start:stop`` to encode for a call: its box plus context, widened around its centre with the
    recording's own audio to ``need`` samples; a recording shorter than that is taken whole when it holds at
    least ``least`` samples (default: ``need``); AudioError if the box is not in the recording."""
    seconds = frames / sample_rate
    if span.start_s >= seconds:
        raise AudioError(f"call {span.call_index} starts at {span.start_s:.6g} s, at or after the end of the recording "
                         f"({seconds:.6g} s, {frames} samples): the box table does not match this file")
    start = max(0, math.floor((span.start_s - context_s) * sample_rate))
    stop = min(frames, math.ceil((span.end_s + context_s) * sample_rate))
    if stop - start >= need:
        return start, stop
    least = need if least is None else min(least, need)
    if frames < least:
        raise AudioError(f"the recording ({1e3 * seconds:.2f} ms) is shorter than the model's shortest input "
                         f"({1e3 * least / sample_rate:.2f} ms of original audio): a call cannot be encoded without "
                         "zero padding")
    if frames < need:
        return 0, frames
    start = min(max(0, (start + stop) // 2 - need // 2), frames - need)
    return start, start + need


@dataclass(frozen=True)
class CallPrepare:
    """Runner prepare: each selected call of a recording -> the strategy's pieces (``piece.clip`` set), then
    the file's ``FileInfo`` (``extra``: ``calls``, ``encoded_seconds``). A file without calls is ok, with none."""

    inner: AudioPrepare
    selection: CallSelection
    min_samples: int = 1  # the strategy's shortest input, in samples at the model's rate
    # widen each call with its recording's audio to this many samples at the model's rate where the recording has
    # them, and take a shorter recording whole (the strategy pads it): bat-hubert's training crop
    widen_samples: int = 0

    @property
    def piece_bytes(self) -> int:
        return self.inner.piece_bytes

    def __call__(self, item: DatasetItem) -> Iterator[Piece | FileInfo]:
        from bat_core.audio import audio_info, read_span

        info = audio_info(item.path)
        rate, target, expansion = info.sample_rate, self.inner.target_rate, self.inner.expansion
        probe = SignalConverter(rate, target, expansion)

        def original(samples: int) -> int:
            return math.ceil(samples * probe.expanded_rate / probe.target_rate) + 2  # soxr rounds the length

        least = original(self.min_samples)
        need = max(least, original(self.widen_samples))
        spans = self.selection.spans.get(item.file_name, ())
        worst: SignalConversion | None = None
        encoded = 0
        for position, span in enumerate(spans):
            start, stop = encoded_bounds(span, rate, info.frames, self.selection.context_s, need, least)
            converter = SignalConverter(rate, target, expansion)
            blocks = list(converter.stream(read_span(item.path, start, stop)))  # bounded: calls are <= MAX_CALL_S
            conversion = converter.conversion
            clip = Clip(position, span.call_index, span.start_s, span.end_s, start / rate, stop / rate, conversion)
            for piece in self.inner.pieces(iter(blocks)):
                piece.clip = clip
                yield piece
            encoded += stop - start
            if worst is None or conversion.discarded_energy_fraction > worst.discarded_energy_fraction:
                worst = conversion  # the file's row reports the call that lost most of its band
        if worst is None:
            probe.finish()
            worst = probe.conversion
        yield FileInfo(seconds=info.frames / rate, conversion=worst,
                       extra={"channels": info.channels, "calls": len(spans), "encoded_seconds": encoded / rate})


class _Counted:
    """Stands in for a file's output under one call's assembler: counts rows per output name, and turns a
    whole-output ``put`` (a per-recording result such as a pooled embedding) into one more row."""

    def __init__(self, output: Any):
        self.output = output
        self.rows: dict[str, int] = {}

    def append(self, array: np.ndarray, name: str = "", fortran: bool = False) -> None:
        if fortran:
            raise ValueError("per-call outputs are appended along axis 0 (fortran layout is whole-file only)")
        array = np.asarray(array)
        self.output.append(array, name)
        self.rows[name] = self.rows.get(name, 0) + (len(array) if array.ndim else 1)

    def put(self, array: np.ndarray, name: str = "") -> None:
        self.append(np.asarray(array)[None], name)


class CallAssembler:
    """Runner assembler of a per-call run: one strategy assembler per call, the index written at the end."""

    def __init__(self, output: Any, make: Callable[[Any], Assembler], empty: np.ndarray):
        self.output, self.make, self.empty = output, make, empty
        self.counted = _Counted(output)
        self.current: tuple[Clip, Assembler, dict[str, int]] | None = None
        self.index: list[tuple] = []
        self.fields: dict | None = None

    def add(self, piece: Piece, output: Any) -> None:
        clip = piece.clip
        if clip is None:
            raise ValueError("a piece without its call reached a per-call assembler")
        if self.current is None or self.current[0].position != clip.position:
            self._close()
            self.current = (clip, self.make(self.counted), dict(self.counted.rows))
        self.current[1].add(piece, output)

    def _close(self) -> None:
        if self.current is None:
            return
        clip, assembler, before = self.current
        self.current = None
        fields = assembler.finish(FileInfo(seconds=clip.encoded_end_s - clip.encoded_start_s, conversion=clip.conversion))
        self.fields = self.fields or fields
        rows = {name: count - before.get(name, 0) for name, count in self.counted.rows.items()}
        main = rows.get("", 0)
        uneven = {name: count for name, count in rows.items() if count != main}
        if uneven:
            raise ValueError(f"call {clip.call_index}: outputs {uneven} have other row counts than the main one ({main}); "
                             "a per-call output must give each call's rows in every output")
        self.index.append((clip.call_index, clip.start_s, clip.end_s, clip.encoded_start_s, clip.encoded_end_s,
                           before.get("", 0), main))

    def finish(self, info: FileInfo) -> dict:
        self._close()
        expected = int(info.extra.get("calls", len(self.index)))
        if len(self.index) != expected:
            raise ValueError(f"{expected} calls were cut from the recording but {len(self.index)} were encoded")
        if not self.index:
            self.output.put(self.empty)
        self.output.put(np.asarray(self.index, dtype=np.float64).reshape(-1, len(INDEX_COLUMNS)), INDEX_NAME)
        fields = dict(self.fields or {"frames_per_second": None, "extra": {}})
        fields["extra"] = {**(fields.get("extra") or {}), "per_call": True, "calls": len(self.index),
                           "encoded_seconds": info.extra.get("encoded_seconds")}
        return fields


def per_call(prepare: AudioPrepare, make: Callable[[Any], Assembler], selection: CallSelection, *,
             min_samples: int, empty: np.ndarray) -> tuple[CallPrepare, Callable[[DatasetItem, Any], CallAssembler]]:
    """A strategy's whole-file ``prepare`` and assembler maker (``make(output)``) turned per-call."""
    return (CallPrepare(prepare, selection, min_samples),
            lambda item, output: CallAssembler(output, make, empty))


def calls_table_path(paths: ProjectPaths, representation: str) -> Path:
    return paths.derived / "calls" / f"{representation}.parquet"


def _extra_path(output: Path, name: str) -> Path:
    return output.with_name(output.name[: -len(".npy")] + f".{name}.npy")


def iter_calls(paths: ProjectPaths, representation: str, file_names: Sequence[str] | None = None,
               config_hash: str | None = None) -> Iterator[pd.DataFrame]:
    """Per recording (ok rows of the manifest; only those of ``file_names``, in that order, and made with
    ``config_hash``, when given), its calls: one row each, the call's output rows in ``values`` and those of
    each per-call extra output (e.g. ``mean``) in a column of that name (numpy arrays)."""
    from bat_core.store import STATUS_OK, read_manifest

    manifest = read_manifest(paths.manifest_path(representation))
    manifest = manifest[manifest["status"] == STATUS_OK]
    if config_hash is not None:
        manifest = manifest[manifest["config_hash"] == config_hash]
    if file_names is not None:
        order = {name: position for position, name in enumerate(file_names)}
        manifest = manifest[manifest["file_name"].isin(order.keys())]
        manifest = manifest.iloc[np.argsort(manifest["file_name"].map(order).to_numpy(), kind="stable")]
    else:
        manifest = manifest.sort_values("file_name", kind="stable")
    for row in manifest.itertuples(index=False):
        extra = json.loads(row.extra or "{}")
        if not extra.get("per_call"):
            raise DatasetError(f"{representation} holds whole-file outputs ({row.file_name}), not per-call ones")
        output = Path(row.output_path)
        output = output if output.is_absolute() else paths.derived / output
        index = np.load(_extra_path(output, INDEX_NAME))
        frame = pd.DataFrame(index[:, :5], columns=list(INDEX_COLUMNS[:5]))
        frame["call_index"] = frame["call_index"].astype(np.int64)
        frame.insert(0, "File Name", row.file_name)
        spans = index[:, 5:7].astype(np.int64)
        names = ["", *(name for name in json.loads(row.extras or "[]") if name != INDEX_NAME)]
        for name in names:
            values = np.load(output if not name else _extra_path(output, name))
            frame[name or "values"] = [values[first:first + rows] for first, rows in spans]
        yield frame


def calls_table(paths: ProjectPaths, representation: str, file_names: Sequence[str] | None = None,
                config_hash: str | None = None) -> pd.DataFrame:
    """Every call of a per-call run in one DataFrame (``values``: the call's outputs, a numpy array)."""
    frames = list(iter_calls(paths, representation, file_names, config_hash))
    if not frames:
        return pd.DataFrame(columns=["File Name", *INDEX_COLUMNS[:5], "values"])
    return pd.concat(frames, ignore_index=True)


def _arrow_rows(arrays: list[np.ndarray]):
    """A list column holding each call's rows with their own dtype (int16 codes stay int16); rows of shape
    ``(F,)`` become fixed-size lists."""
    import pyarrow as pa

    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(array) for array in arrays])
    flat = np.concatenate(arrays) if arrays else np.zeros(0)
    if flat.ndim == 1:
        inner = pa.array(flat)
    else:
        inner = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), int(np.prod(flat.shape[1:])))
    return pa.ListArray.from_arrays(pa.array(offsets), inner)


def write_calls_table(store) -> Path:
    """Fold a per-call store into ``derived/calls/<representation>.parquet``: its outputs made with its current
    settings, of the recordings annotations.csv lists now (a subset or shard run folds them all), one
    recording at a time, written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bat_core.dataset import Dataset

    paths, representation = store.paths, store.representation
    names = [item.file_name for item in Dataset.from_paths(paths)]
    path = calls_table_path(paths, representation)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        for frame in iter_calls(paths, representation, names, store.config_hash):
            if frame.empty:  # a recording without calls adds no row
                continue
            arrays = {column: _arrow_rows(list(frame[column])) for column in frame.columns[len(INDEX_COLUMNS[:5]) + 1:]}
            table = pa.Table.from_pandas(frame.drop(columns=list(arrays)), preserve_index=False)
            for column, array in arrays.items():
                table = table.append_column(column, array)
            if writer is None:
                writer = pq.ParquetWriter(temporary, table.schema)
            writer.write_table(table.cast(writer.schema))
        if writer is None:  # no call anywhere: an empty table with the columns
            pq.write_table(pa.Table.from_pandas(calls_table(paths, representation, []), preserve_index=False), temporary)
        else:
            writer.close()
            writer = None
        os.replace(temporary, path)
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
    return path
