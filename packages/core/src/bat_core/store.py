"""The representation store: every strategy writes its per-file outputs through here.

Outputs go to the seed layout, each written atomically (temporary file, then
rename), so a crash never leaves a half-written array behind a row that says ok.
Every row processed is appended at once to a journal (JSON lines), and the journal
is folded into ``derived/manifests/<representation>.parquet`` when the run ends or,
after a crash, when the next run starts: an interrupted run loses nothing.

A rerun skips a file whose manifest row is ``ok`` with the same config hash and the
same source fingerprint and whose output still exists; ``overwrite=True`` redoes it.
Failed rows are always retried.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bat_core.dataset import DatasetItem
from bat_core.paths import ProjectPaths
from bat_core.provenance import config_dict, config_hash, package_versions
from bat_core.time_expansion import SignalConversion

STATUS_OK = "ok"
STATUS_FAILED = "failed"

MANIFEST_COLUMNS = [
    "file_name", "stem", "status", "reason", "output_path", "shape", "dtype",
    "frames_per_second", "seconds", "original_sample_rate", "time_expansion",
    "target_sample_rate", "kept_up_to_hz", "discarded_energy_fraction", "band_warning",
    "config_hash", "config", "model_id", "package_versions", "source_fingerprint",
    "created_at", "extra",
]


@dataclass
class RunSummary:
    """Counts of one run; ``done + skipped + failed == given`` always."""

    representation: str
    given: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    output_dir: Path | None = None
    manifest_path: Path | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    band_warnings: int = 0  # files whose conversion discarded more of the spectrum than the threshold

    @property
    def accounted(self) -> bool:
        return self.done + self.skipped + self.failed == self.given

    def line(self) -> str:
        return (
            f"{self.representation}: {self.given} given, {self.done} done, "
            f"{self.skipped} skipped (already done), {self.failed} failed in {self.seconds:.1f} s"
            f" -> {self.output_dir} (manifest {self.manifest_path})"
            + (f"; {self.band_warnings} lost part of their spectrum to the conversion (manifest column band_warning)"
               if self.band_warnings else "")
        )


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
    ):
        self.paths = paths
        self.representation = representation
        self.output_dir = output_dir
        self.file_pattern = file_pattern
        self.config = config_dict(config)
        self.config_hash = config_hash(config)
        self.model_id = model_id or ""
        self.package_versions = json.dumps(package_versions([*packages, "numpy", "torch"]))
        self.manifest_path = paths.manifest_path(representation)
        self.journal_path = self.manifest_path.with_suffix(".journal.jsonl")
        self._journal = None
        self._summary: RunSummary | None = None
        self._started = 0.0
        self._fold_journal()

    # -- layout -----------------------------------------------------------
    def output_path(self, item: DatasetItem, suffix: str = "") -> Path:
        name = self.file_pattern.format(stem=item.stem)
        if suffix:
            name = name[: -len(".npy")] + f".{suffix}.npy" if name.endswith(".npy") else name + suffix
        return self.output_dir / name

    def read_manifest(self) -> pd.DataFrame:
        """Every row written so far (earlier runs included)."""
        self._fold_journal()
        return read_manifest(self.manifest_path)

    # -- a run ------------------------------------------------------------
    def begin(self, items: Sequence[DatasetItem], overwrite: bool = False) -> list[DatasetItem]:
        """Start a run over ``items``; returns those still to do (the rest count as skipped)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        (self.manifest_path.parent / f"{self.representation}.config.json").write_text(
            json.dumps({"config_hash": self.config_hash, "config": self.config}, indent=2, default=str)
        )
        self._started = time.perf_counter()
        self._summary = RunSummary(
            self.representation, given=len(items), output_dir=self.output_dir,
            manifest_path=self.manifest_path,
        )
        done_rows = {} if overwrite else self._reusable_rows()
        todo = []
        for item in items:
            row = done_rows.get(item.file_name)
            if row is not None and self._still_valid(item, row):
                self._summary.skipped += 1
            else:
                todo.append(item)
        self._journal = open(self.journal_path, "a", encoding="utf-8")
        return todo

    def write(
        self,
        item: DatasetItem,
        array: np.ndarray,
        *,
        frames_per_second: float | None = None,
        seconds: float | None = None,
        conversion: SignalConversion | None = None,
        extras: Mapping[str, np.ndarray] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save ``array`` (and named ``extras`` beside it) and record an ok row."""
        self._require_run()
        target = self.output_path(item)
        for suffix, extra_array in (extras or {}).items():
            _atomic_save(self.output_path(item, suffix), extra_array)
        _atomic_save(target, array)
        row = self._row(item, STATUS_OK, "", conversion, extra)
        row.update(
            output_path=str(target.relative_to(self.paths.derived))
            if target.is_relative_to(self.paths.derived) else str(target),
            shape=json.dumps(list(array.shape)),
            dtype=str(array.dtype),
            frames_per_second=float(frames_per_second) if frames_per_second is not None else None,
            seconds=float(seconds) if seconds is not None else None,
        )
        self._record(row)
        self._summary.done += 1
        self._summary.band_warnings += bool(conversion is not None and conversion.band_warning)
        return target

    def fail(self, item: DatasetItem, reason: str, conversion: SignalConversion | None = None) -> None:
        """Record a failed row; the run goes on."""
        self._record(self._row(item, STATUS_FAILED, reason, conversion, None))
        self._summary.failed += 1
        self._summary.failures.append((item.file_name, reason))

    def finish(self) -> RunSummary:
        """Fold the journal into the Parquet manifest and return the run's counts."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self._fold_journal()
        summary = self._summary
        summary.seconds = time.perf_counter() - self._started
        if not summary.accounted:
            raise AssertionError(f"store lost rows: {summary}")
        return summary

    def __enter__(self) -> RepresentationStore:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
            self._fold_journal()

    # -- internals --------------------------------------------------------
    def _row(self, item, status, reason, conversion, extra) -> dict:
        try:
            fingerprint = item.fingerprint()
        except OSError:
            fingerprint = ""
        row = {column: None for column in MANIFEST_COLUMNS}
        row.update(
            file_name=item.file_name, stem=item.stem, status=status, reason=reason,
            output_path="", shape="", dtype="",
            config_hash=self.config_hash, config=json.dumps(self.config, default=str),
            model_id=self.model_id, package_versions=self.package_versions,
            source_fingerprint=fingerprint,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            extra=json.dumps(dict(extra or {}), default=str),
        )
        if conversion is not None:
            row.update(conversion.as_record())
        return row

    def _require_run(self) -> None:
        if self._journal is None:
            raise RuntimeError("call begin() before writing rows")

    def _record(self, row: dict) -> None:
        self._require_run()
        self._journal.write(json.dumps(row, default=_json_default) + "\n")
        self._journal.flush()

    def _reusable_rows(self) -> dict[str, dict]:
        manifest = read_manifest(self.manifest_path)
        ok = manifest[(manifest["status"] == STATUS_OK) & (manifest["config_hash"] == self.config_hash)]
        return {row["file_name"]: row for row in ok.to_dict(orient="records")}

    def _still_valid(self, item: DatasetItem, row: dict) -> bool:
        try:
            fingerprint = item.fingerprint()
        except OSError:
            return False
        output = Path(row["output_path"])
        output = output if output.is_absolute() else self.paths.derived / output
        return fingerprint == row["source_fingerprint"] and output.is_file()

    def _fold_journal(self) -> None:
        if not self.journal_path.is_file() or self._journal is not None:
            return
        new_rows = _read_journal(self.journal_path)
        if new_rows:
            merged = _merge_rows(read_manifest(self.manifest_path), new_rows)
            _atomic_write_parquet(merged, self.manifest_path)
        self.journal_path.unlink()


def read_manifest(path: Path) -> pd.DataFrame:
    """A manifest as a DataFrame; empty (with the columns) if none was written yet."""
    if not Path(path).is_file():
        return pd.DataFrame(columns=MANIFEST_COLUMNS)
    return pd.read_parquet(path)


def _read_journal(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as journal:
        for line in journal:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a crash: the file it names is redone next run
    return rows


def _merge_rows(manifest: pd.DataFrame, rows: Iterable[dict]) -> pd.DataFrame:
    latest = {row["file_name"]: row for row in manifest.to_dict(orient="records")}
    for row in rows:
        latest[row["file_name"]] = row
    table = pd.DataFrame(list(latest.values()), columns=MANIFEST_COLUMNS)
    for column in ("frames_per_second", "seconds", "time_expansion", "kept_up_to_hz",
                   "discarded_energy_fraction"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
    table["original_sample_rate"] = pd.to_numeric(table["original_sample_rate"], errors="coerce").astype("Int64")
    table["target_sample_rate"] = pd.to_numeric(table["target_sample_rate"], errors="coerce").astype("Int64")
    table["band_warning"] = table["band_warning"].astype("boolean")
    for column in ("file_name", "stem", "status", "reason", "output_path", "shape", "dtype",
                   "config_hash", "config", "model_id", "package_versions",
                   "source_fingerprint", "created_at", "extra"):
        table[column] = table[column].fillna("").astype(str)
    return table


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        np.save(handle, array)
    os.replace(temporary, path)


def _atomic_write_parquet(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_parquet(temporary, index=False)
    os.replace(temporary, path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
