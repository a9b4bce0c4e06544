"""The representation store: every per-file output goes through here.

- Outputs go to the seed layout, written into temporary files (incrementally, for long
  recordings) and renamed into place when the file is complete: a crash never leaves a
  half-written array behind a row that says ok, and no float output with a NaN or an
  infinity is ever written as ok.
- Every row is appended at once to this writer's journal (JSON lines), folded into
  ``derived/manifests/<representation>.parquet`` when the run ends or, after a crash, when
  the next run starts: an interrupted run loses nothing. Shards of one run (``--shard I/N``)
  each keep their own journal and fold it into the one manifest.
- One writer at a time per representation (``bat_core.locks``); shards of one run excepted.
- A rerun skips a file whose row is ``ok`` with the same config hash and source fingerprint
  and whose outputs exist (``overwrite=True`` redoes it); failed rows are retried; rows made
  with another configuration are stale, counted and redone, and the summary names the
  settings that changed.
- A folder that cannot be written (read-only, no permission, full disk) stops the run with
  ``OutputError`` (exit 2), never a traceback or a failed row.
"""

from __future__ import annotations

import errno
import json
import os
import re
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bat_core.dataset import DatasetItem
from bat_core.errors import OutputError
from bat_core.locks import WriterLock, exclusive, host_tag, live_writers, pid_alive, writer_name
from bat_core.paths import ProjectPaths
from bat_core.provenance import config_dict, config_hash, package_versions
from bat_core.time_expansion import SignalConversion
from bat_core.values import require_finite

STATUS_OK = "ok"
STATUS_FAILED = "failed"
SCHEMA_VERSION = 2  # 1: round-1 manifests (no schema_version, kind, codebook_size, extras columns)

MANIFEST_COLUMNS = [
    "file_name", "stem", "status", "reason", "output_path", "shape", "dtype", "kind", "codebook_size",
    "frames_per_second", "seconds", "original_sample_rate", "time_expansion",
    "target_sample_rate", "kept_up_to_hz", "discarded_energy_fraction", "band_warning",
    "config_hash", "config", "model_id", "package_versions", "source_fingerprint",
    "created_at", "extra", "extras", "schema_version",
]
_FLOAT_COLUMNS = ("frames_per_second", "seconds", "time_expansion", "kept_up_to_hz", "discarded_energy_fraction")
_INT_COLUMNS = ("original_sample_rate", "target_sample_rate", "codebook_size", "schema_version")
_TEXT_COLUMNS = ("file_name", "stem", "status", "reason", "output_path", "shape", "dtype", "kind", "config_hash",
                 "config", "model_id", "package_versions", "source_fingerprint", "created_at", "extra", "extras")


@dataclass
class RunSummary:
    """Counts of one run; ``done + skipped + failed == given`` always."""

    representation: str
    given: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    stale: int = 0  # of the done: files whose earlier output was made with other settings or from a changed file
    stale_keys: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output_dir: Path | None = None
    manifest_path: Path | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    band_warnings: int = 0  # files whose conversion discarded more of the spectrum than the threshold

    @property
    def accounted(self) -> bool:
        return self.done + self.skipped + self.failed == self.given

    def line(self) -> str:
        text = (f"{self.representation}: {self.given} given, {self.done} done, {self.skipped} skipped (already done), "
                f"{self.failed} failed in {self.seconds:.1f} s -> {self.output_dir} (manifest {self.manifest_path})")
        if self.stale:
            changed = ", ".join(self.stale_keys) if self.stale_keys else "the source files"
            text += f"; {self.stale} redone because their earlier outputs were stale (changed: {changed})"
        if self.band_warnings:
            text += (f"; {self.band_warnings} lost part of their spectrum to the conversion (manifest column "
                     "band_warning)")
        return text


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an unwritable or full folder into one clear OutputError."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
            raise OutputError(f"cannot write {path}: {error.strerror or error}; pass --derived DIR to write the "
                              "outputs somewhere writable") from error
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise OutputError(f"no space left on the device writing {path}; free some space or pass --derived DIR on "
                              "another disk, then rerun the same command: it resumes") from error
        raise


class FileOutput:
    """The outputs of one file while it is being made: temporary files, renamed into place by ``commit``."""

    def __init__(self, store: RepresentationStore, item: DatasetItem):
        self.store, self.item = store, item
        self._growing: dict[str, _NpyAppender] = {}
        self._whole: dict[str, Path] = {}
        self.shapes: dict[str, tuple] = {}
        self.dtypes: dict[str, str] = {}

    def append(self, array: np.ndarray, name: str = "", fortran: bool = False) -> None:
        """Add rows along axis 0 (``fortran``: a 2-D block ``(t, n)`` becomes columns of a ``(n, T)`` array)."""
        array = require_finite(np.asarray(array), f"output {name or 'array'} of {self.item.file_name}")
        appender = self._growing.get(name)
        if appender is None:
            appender = self._growing[name] = _NpyAppender(self.store._temporary(self.store.output_path(self.item, name)),
                                                          fortran)
        with writing(appender.path):
            appender.append(array)

    def put(self, array: np.ndarray, name: str = "") -> None:
        """A whole output at once."""
        array = require_finite(np.asarray(array), f"output {name or 'array'} of {self.item.file_name}")
        temporary = self.store._temporary(self.store.output_path(self.item, name))
        with writing(temporary):
            temporary.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                np.save(handle, array)
        self._whole[name] = temporary
        self.shapes[name], self.dtypes[name] = tuple(array.shape), str(array.dtype)

    def names(self) -> list[str]:
        return sorted({*self._growing, *self._whole})

    def _commit(self) -> None:
        for name, appender in self._growing.items():
            with writing(appender.path):
                self.shapes[name], self.dtypes[name] = appender.close()
        temporaries = {**{name: a.path for name, a in self._growing.items()}, **self._whole}
        if "" not in temporaries:
            raise ValueError(f"no output was made for {self.item.file_name}")
        for name in sorted(temporaries, key=lambda n: n == ""):  # extras first, the main array last
            target = self.store.output_path(self.item, name)
            with writing(target):
                os.replace(temporaries[name], target)

    def discard(self) -> None:
        for appender in self._growing.values():
            appender.abandon()
        for path in self._whole.values():
            path.unlink(missing_ok=True)
        self._growing.clear()
        self._whole.clear()


class RepresentationStore:
    """Writes one representation's per-file arrays and its manifest."""

    def __init__(
        self,
        paths: ProjectPaths,
        representation: str,
        output_dir: Path,
        config: Any,
        *,
        file_pattern: str = "{stem}.npy",
        model_id: str | None = None,
        packages: Sequence[str] = ("bat-core",),
        kind: str = "features",
        codebook_size: int | None = None,
        shard: tuple[int, int] | None = None,
    ):
        self.paths = paths
        self.representation = representation
        self.output_dir = output_dir
        self.file_pattern = file_pattern
        self.config = config_dict(config)
        self.config_hash = config_hash(config)
        self.model_id = model_id or ""
        self.kind = kind
        self.codebook_size = codebook_size
        self.shard = shard
        self.package_versions = json.dumps(package_versions([*packages, "numpy", "torch"]))
        self.manifest_path = paths.manifest_path(representation)
        self.journal_path = paths.manifests_dir / f"{representation}.{writer_name(shard)}.journal.jsonl"
        self._lock = WriterLock(paths.manifests_dir, representation, shard)
        self._journal = None
        self._summary: RunSummary | None = None
        self._started = 0.0
        self._earlier_ok: dict[str, tuple[dict, bool]] = {}  # file name -> (ok row of an earlier run, stale)

    # -- layout -----------------------------------------------------------
    def output_path(self, item: DatasetItem, suffix: str = "") -> Path:
        name = self.file_pattern.format(stem=item.stem)
        if suffix:
            name = name[: -len(".npy")] + f".{suffix}.npy" if name.endswith(".npy") else name + suffix
        return self.output_dir / name

    def read_manifest(self) -> pd.DataFrame:
        """Every row written so far (earlier runs and live journals included)."""
        return _with_journals(read_manifest(self.manifest_path), self._journals())

    def _temporary(self, target: Path) -> Path:
        return target.with_name(f".{target.name}.{host_tag()}-{os.getpid()}.tmp")

    # -- a run ------------------------------------------------------------
    def begin(self, items: Sequence[DatasetItem], overwrite: bool = False) -> list[DatasetItem]:
        """Start a run over ``items`` (of a sharded store: those of its shard): take the lock, fold what
        crashed runs left, return the files still to do."""
        if self.shard is not None:
            from bat_core.dataset import shard_of

            items = [item for item in items if shard_of(item.file_name, self.shard[1]) == self.shard[0]]
        with writing(self.paths.derived):
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.paths.manifests_dir.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        try:
            with writing(self.paths.manifests_dir):
                self._fold()
                self._remove_orphan_temporaries()
                (self.paths.manifests_dir / f"{self.representation}.config.json").write_text(
                    json.dumps({"config_hash": self.config_hash, "config": self.config}, indent=2, default=str))
                self._journal = open(self.journal_path, "a", encoding="utf-8")
        except BaseException:
            self._lock.release()
            raise
        self._started = time.perf_counter()
        self._summary = RunSummary(self.representation, given=len(items), output_dir=self.output_dir,
                                   manifest_path=self.manifest_path)
        previous = self._previous_rows()
        todo = []
        for item in items:
            row = previous.get(item.file_name)
            if row is not None and row["status"] == STATUS_OK:
                valid = self._still_valid(item, row)
                if valid and not overwrite:
                    self._summary.skipped += 1
                    continue
                self._earlier_ok[item.file_name] = (row, not valid)
            todo.append(item)
        return todo

    def open(self, item: DatasetItem) -> FileOutput:
        self._require_run()
        return FileOutput(self, item)

    def commit(
        self,
        output: FileOutput,
        *,
        frames_per_second: float | None = None,
        seconds: float | None = None,
        conversion: SignalConversion | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Rename a file's outputs into place and record its ok row."""
        self._require_run()
        output._commit()
        item = output.item
        target = self.output_path(item)
        row = self._row(item, STATUS_OK, "", conversion, extra)
        row.update(
            output_path=self._relative(target), shape=json.dumps(list(output.shapes[""])), dtype=output.dtypes[""],
            frames_per_second=float(frames_per_second) if frames_per_second is not None else None,
            seconds=float(seconds) if seconds is not None else None,
            extras=json.dumps([name for name in output.names() if name]),
        )
        self._record(row)
        self._summary.done += 1
        self._summary.band_warnings += bool(conversion is not None and conversion.band_warning)
        earlier, stale = self._earlier_ok.pop(item.file_name, (None, False))
        if earlier is not None:
            for name in set(json.loads(earlier.get("extras") or "[]")) - set(output.names()):
                with writing(self.output_dir):
                    self.output_path(item, name).unlink(missing_ok=True)  # an extra this run no longer makes
        if stale:
            self._summary.stale += 1
            for key in _changed_keys(earlier, self.config, row["source_fingerprint"]):
                if key not in self._summary.stale_keys:
                    self._summary.stale_keys.append(key)
        return target

    def write(self, item: DatasetItem, array: np.ndarray, *, extras: Mapping[str, np.ndarray] | None = None,
              **fields) -> Path:
        """Save ``array`` (and named ``extras`` beside it) and record an ok row, in one call."""
        output = self.open(item)
        try:
            for suffix, extra_array in (extras or {}).items():
                output.put(extra_array, suffix)
            output.put(array)
        except BaseException:
            output.discard()
            raise
        return self.commit(output, **fields)

    def fail(self, item: DatasetItem, reason: str, conversion: SignalConversion | None = None) -> None:
        """Record a failed row; the run goes on. An earlier ok output of this file is no longer valid: removed."""
        self._require_run()
        earlier, _ = self._earlier_ok.pop(item.file_name, (None, False))
        if earlier is not None and item.path.exists():  # a missing source (an unmounted drive) keeps its old output
            for name in ["", *json.loads(earlier.get("extras") or "[]")]:
                with writing(self.output_dir):
                    self.output_path(item, name).unlink(missing_ok=True)
        self._record(self._row(item, STATUS_FAILED, reason, conversion, None))
        self._summary.failed += 1
        self._summary.failures.append((item.file_name, reason))

    # -- other processes of this run (Ray actors) --------------------------------
    def for_worker(self) -> RepresentationStore:
        """A copy of this running store for another process of the same run: it writes outputs and rows to
        its own journal (``join_run``) under this run's lock, and this run's ``finish`` folds that journal."""
        self._require_run()
        worker = object.__new__(RepresentationStore)
        worker.__dict__.update(self.__dict__)
        worker._lock, worker._journal, worker._summary = None, None, None
        return worker

    def join_run(self, name: str) -> None:
        """In the other process: open its journal, ``<representation>.<name>.journal.jsonl``."""
        self.journal_path = self.paths.manifests_dir / f"{self.representation}.{name}.journal.jsonl"
        with writing(self.journal_path):
            self._journal = open(self.journal_path, "a", encoding="utf-8")
        self._summary = RunSummary(self.representation, given=0)

    def tally(self, file_name: str, status: str, reason: str = "", *, stale: bool = False,
              stale_keys: Sequence[str] = (), band_warning: bool = False) -> None:
        """Count a file whose row another process of this run wrote."""
        summary = self._summary
        if status == STATUS_OK:
            summary.done += 1
            summary.stale += stale
            summary.band_warnings += band_warning
            summary.stale_keys.extend(key for key in stale_keys if key not in summary.stale_keys)
        else:
            summary.failed += 1
            summary.failures.append((file_name, reason))
        self._earlier_ok.pop(file_name, None)

    def finish(self) -> RunSummary:
        """Fold this writer's journal into the Parquet manifest, release the lock, return the run's counts."""
        self._close_journal()
        try:
            with writing(self.manifest_path):
                self._fold()
        finally:
            self._lock.release()
        summary = self._summary
        summary.seconds = time.perf_counter() - self._started
        if not summary.accounted:
            raise AssertionError(f"store lost rows: {summary}")
        return summary

    def __enter__(self) -> RepresentationStore:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._journal is not None:  # interrupted: rows already journaled stay for the next run
            self._close_journal()
            try:
                with writing(self.manifest_path):
                    self._fold()
            except OSError:
                pass
            finally:
                self._lock.release()

    # -- internals --------------------------------------------------------
    def _relative(self, target: Path) -> str:
        return str(target.relative_to(self.paths.derived)) if target.is_relative_to(self.paths.derived) else str(target)

    def _row(self, item, status, reason, conversion, extra) -> dict:
        try:
            fingerprint = item.fingerprint()
        except OSError:
            fingerprint = ""
        row = {column: None for column in MANIFEST_COLUMNS}
        row.update(
            file_name=item.file_name, stem=item.stem, status=status, reason=reason,
            output_path="", shape="", dtype="", kind=self.kind, codebook_size=self.codebook_size,
            config_hash=self.config_hash, config=json.dumps(self.config, default=str),
            model_id=self.model_id, package_versions=self.package_versions,
            source_fingerprint=fingerprint,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            extra=json.dumps(dict(extra or {}), default=str), extras="[]", schema_version=SCHEMA_VERSION,
        )
        if conversion is not None:
            row.update(conversion.as_record())
        return row

    def _require_run(self) -> None:
        if self._journal is None:
            raise RuntimeError("call begin() before writing rows")

    def _record(self, row: dict) -> None:
        self._require_run()
        with writing(self.journal_path):
            self._journal.write(json.dumps(row, default=_json_default) + "\n")
            self._journal.flush()

    def _close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _journals(self) -> list[Path]:
        found = sorted(self.paths.manifests_dir.glob(f"{self.representation}.*.journal.jsonl"))
        legacy = self.paths.manifests_dir / f"{self.representation}.journal.jsonl"  # round 1
        return [*found, legacy] if legacy.is_file() else found

    def _previous_rows(self) -> dict[str, dict]:
        manifest = self.read_manifest()
        return {row["file_name"]: row for row in manifest.to_dict(orient="records")}

    def _still_valid(self, item: DatasetItem, row: dict) -> bool:
        if row["config_hash"] != self.config_hash:
            return False
        try:
            fingerprint = item.fingerprint()
        except OSError:
            return False
        output = Path(row["output_path"])
        output = output if output.is_absolute() else self.paths.derived / output
        extras = json.loads(row.get("extras") or "[]")
        return (fingerprint == row["source_fingerprint"] and output.is_file()
                and all(self.output_path(item, name).is_file() for name in extras))

    def _fold(self) -> None:
        """Fold journals into the manifest: this writer's own, and those of writers that are gone
        (a crashed run's); live shards' journals are theirs to fold."""
        with exclusive(self.paths.manifests_dir / f".{self.representation}.fold"):
            live = set(live_writers(self.paths.manifests_dir, self.representation))
            journals = [journal for journal in self._journals() if journal == self.journal_path
                        or journal.name.removeprefix(f"{self.representation}.").removesuffix(".journal.jsonl") not in live]
            rows = [row for journal in journals for row in _read_journal(journal)]
            if rows:
                _atomic_write_parquet(_merge_rows(read_manifest(self.manifest_path), rows), self.manifest_path)
            for journal in journals:
                journal.unlink(missing_ok=True)

    def _remove_orphan_temporaries(self) -> None:
        """Temporary files of writers of this host that died (host and pid are in the name) are removed."""
        mine = host_tag()
        for folder in (self.output_dir, self.paths.manifests_dir):
            for temporary in folder.glob(".*.tmp"):
                match = re.search(r"\.([0-9a-f]{8})-(\d+)\.tmp$", temporary.name)
                if match and match.group(1) == mine and not pid_alive(int(match.group(2))):
                    temporary.unlink(missing_ok=True)


class _NpyAppender:
    """A .npy file written block by block: a header with room to spare, rows appended, the shape set at the end.

    ``fortran``: blocks ``(t, n)`` are stored as a Fortran-ordered ``(n, T)`` array, the same bytes, so
    a ``(n_mels, T)`` spectrogram grows frame by frame and a crop of frames is one contiguous read."""

    HEADER_BYTES = 256

    def __init__(self, path: Path, fortran: bool = False):
        self.path, self.fortran = path, fortran
        self.handle = None
        self.dtype: np.dtype | None = None
        self.trailing: tuple = ()
        self.rows = 0

    def append(self, block: np.ndarray) -> None:
        if self.handle is None:
            if self.fortran and block.ndim != 2:
                raise ValueError("fortran appends take 2-D blocks")
            self.dtype, self.trailing = block.dtype, tuple(block.shape[1:])
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "wb")
            self.handle.write(_npy_header(self.dtype, (0, *self.trailing), False, self.HEADER_BYTES))
        if block.dtype != self.dtype or tuple(block.shape[1:]) != self.trailing:
            raise ValueError(f"block {block.dtype}{block.shape} does not continue {self.dtype}(..., {self.trailing})")
        self.handle.write(np.ascontiguousarray(block).tobytes())
        self.rows += len(block)

    def close(self) -> tuple[tuple, str]:
        if self.handle is None:
            raise ValueError("nothing was appended")
        shape = (*self.trailing[::-1], self.rows) if self.fortran else (self.rows, *self.trailing)
        self.handle.seek(0)
        self.handle.write(_npy_header(self.dtype, shape, self.fortran, self.HEADER_BYTES))
        self.handle.close()
        self.handle = None
        return shape, str(self.dtype)

    def abandon(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        self.path.unlink(missing_ok=True)


def _npy_header(dtype: np.dtype, shape: tuple, fortran: bool, size: int) -> bytes:
    text = f"{{'descr': {np.lib.format.dtype_to_descr(dtype)!r}, 'fortran_order': {fortran!r}, 'shape': {tuple(shape)!r}, }}"
    body = size - 10
    if len(text) + 1 > body:
        raise ValueError(f"shape {shape} does not fit a {size}-byte .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + (text.ljust(body - 1) + "\n").encode("latin1")


def read_manifest(path: Path) -> pd.DataFrame:
    """A manifest as a DataFrame with every current column (a round-1 manifest gains the new ones)."""
    if not Path(path).is_file():
        return pd.DataFrame(columns=MANIFEST_COLUMNS)
    table = pd.read_parquet(path)
    if "schema_version" not in table.columns:
        table["schema_version"] = 1
    return _normalised(table)


def _with_journals(manifest: pd.DataFrame, journals: Iterable[Path]) -> pd.DataFrame:
    rows = [row for journal in journals for row in _read_journal(journal)]
    return _merge_rows(manifest, rows) if rows else manifest


def _read_journal(path: Path) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8") as journal:
            for line in journal:
                try:
                    rows.append({"schema_version": 1, **json.loads(line)})  # round-1 rows carry no version
                except json.JSONDecodeError:
                    break  # a line cut short by a crash: the file it names is redone next run
    except FileNotFoundError:
        pass
    return rows


def _merge_rows(manifest: pd.DataFrame, rows: Iterable[dict]) -> pd.DataFrame:
    latest = {row["file_name"]: row for row in manifest.to_dict(orient="records")}
    for row in rows:
        latest[row["file_name"]] = row
    return _normalised(pd.DataFrame(list(latest.values())))


def _normalised(table: pd.DataFrame) -> pd.DataFrame:
    for column in MANIFEST_COLUMNS:
        if column not in table.columns:
            table[column] = None
    table = table[MANIFEST_COLUMNS].copy()
    for column in _FLOAT_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
    for column in _INT_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
    table["band_warning"] = table["band_warning"].astype("boolean")
    for column in _TEXT_COLUMNS:
        table[column] = table[column].fillna("").astype(str)
    table.loc[table["extras"] == "", "extras"] = "[]"
    return table.reset_index(drop=True)


def _changed_keys(row: dict, config: dict, fingerprint: str) -> list[str]:
    """Settings (dotted keys) that differ between an earlier row's config and this run's."""
    if row.get("source_fingerprint") and row["source_fingerprint"] != fingerprint:
        return ["source file"]
    try:
        before = _flat(json.loads(row.get("config") or "{}"))
    except ValueError:
        before = {}
    now = _flat(json.loads(json.dumps(config, default=str)))
    return sorted(key for key in before.keys() | now.keys() if before.get(key, "<absent>") != now.get(key, "<absent>"))


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat = {}
        for key, inner in value.items():
            flat.update(_flat(inner, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): json.dumps(value, sort_keys=True)}


def _atomic_write_parquet(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{host_tag()}-{os.getpid()}.tmp")
    table.to_parquet(temporary, index=False)
    os.replace(temporary, path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
