"""A project's recordings: ``data/annotations.csv`` rows validated against ``data/audio``.

A bad dataset (no CSV, no ``File Name`` column, duplicate names, colliding stems,
names that escape ``data/audio``) stops at once with a message listing what was
found. A missing audio file does not: it is kept as an item whose ``exists`` is
False, so every run can report it as a failed row.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from bat_core.errors import DatasetError
from bat_core.paths import ProjectPaths

if TYPE_CHECKING:
    import pandas as pd

FILE_NAME_COLUMN = "File Name"


@dataclass(frozen=True)
class DatasetItem:
    """One annotated recording."""

    file_name: str
    path: Path
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """Name of every per-file output (``derived/mels_48k/<stem>.npy``)."""
        return PurePosixPath(self.file_name).stem

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def fingerprint(self) -> str:
        """Size and modification time: a changed file is recomputed on resume."""
        stat = self.path.stat()
        return f"{stat.st_size}-{stat.st_mtime_ns}"


class Dataset(Sequence[DatasetItem]):
    """The validated rows of annotations.csv, in file order."""

    def __init__(self, paths: ProjectPaths, items: Sequence[DatasetItem], label_columns: Sequence[str]):
        self.paths = paths
        self.items = list(items)
        self.label_columns = list(label_columns)

    @classmethod
    def from_root(cls, root: str | Path, derived: str | Path | None = None) -> Dataset:
        return cls.from_paths(ProjectPaths.for_root(root, derived))

    @classmethod
    def from_paths(cls, paths: ProjectPaths) -> Dataset:
        table = read_annotations(paths.annotations_csv)
        items = _validated_items(table, paths.audio_dir)
        label_columns = [c for c in table.columns if c != FILE_NAME_COLUMN]
        return cls(paths, items, label_columns)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return Dataset(self.paths, self.items[index], self.label_columns)
        return self.items[index]

    def __iter__(self) -> Iterator[DatasetItem]:
        return iter(self.items)

    def missing(self) -> list[DatasetItem]:
        return [item for item in self.items if not item.exists]

    def select(self, where: Mapping[str, str | Sequence[str]] | None = None, limit: int | None = None,
               shard: tuple[int, int] | None = None) -> Dataset:
        """Rows whose labels match every ``column=value`` in ``where``, then the first ``limit``, then
        shard ``I`` of ``N`` (``shard=(I, N)``, 0 <= I < N): the files whose ``shard_of`` is I."""
        items = self.items
        for column, wanted in (where or {}).items():
            if column not in self.label_columns:
                raise DatasetError(
                    f"cannot select on column {column!r}: annotations.csv has {self.label_columns}"
                )
            values = {wanted} if isinstance(wanted, str) else set(wanted)
            items = [item for item in items if item.labels.get(column, "") in values]
        if limit is not None:
            if limit < 0:
                raise DatasetError(f"--limit must be >= 0, got {limit}")
            items = items[:limit]
        if shard is not None:
            index, count = shard
            if not 0 <= index < count:
                raise DatasetError(f"--shard I/N needs 0 <= I < N, got {index}/{count}")
            items = [item for item in items if shard_of(item.file_name, count) == index]
        return Dataset(self.paths, items, self.label_columns)

    def labels(self, column: str) -> list[str]:
        if column not in self.label_columns:
            raise DatasetError(f"no label column {column!r}: annotations.csv has {self.label_columns}")
        return [item.labels.get(column, "") for item in self.items]


def shard_of(file_name: str, count: int) -> int:
    """The shard a file belongs to: sha1 of its name mod ``count`` (the same in every process and
    on every machine, unlike Python's salted ``hash``)."""
    return int(hashlib.sha1(file_name.encode("utf-8")).hexdigest(), 16) % count


def read_annotations(csv_path: Path) -> pd.DataFrame:
    """Read annotations.csv as strings (empty cells stay ``""``, never NaN)."""
    import pandas as pd

    if not csv_path.is_file():
        raise DatasetError(
            f"annotations not found: {csv_path}. A project root holds data/annotations.csv "
            "(column 'File Name') and data/audio/; `bat-core demo ROOT` writes an example."
        )
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {csv_path} as CSV: {error}") from error
    table.columns = [str(c).strip() for c in table.columns]
    if FILE_NAME_COLUMN not in table.columns:
        raise DatasetError(
            f"{csv_path} has no {FILE_NAME_COLUMN!r} column; columns found: {list(table.columns)}"
        )
    table[FILE_NAME_COLUMN] = table[FILE_NAME_COLUMN].str.strip()
    return table


def _validated_items(table: pd.DataFrame, audio_dir: Path) -> list[DatasetItem]:
    names = table[FILE_NAME_COLUMN].tolist()
    problems: list[str] = []

    empty_rows = [i + 2 for i, name in enumerate(names) if not name]
    if empty_rows:
        problems.append(f"empty {FILE_NAME_COLUMN!r} on CSV line(s) {_short(empty_rows)}")

    escaping = [name for name in names if name and _escapes(name)]
    if escaping:
        problems.append(
            f"names must be relative paths inside data/audio; refused: {_short(escaping)}"
        )

    seen: dict[str, int] = defaultdict(int)
    for name in names:
        seen[name] += 1
    duplicates = [name for name, count in seen.items() if name and count > 1]
    if duplicates:
        problems.append(f"duplicate file names: {_short(duplicates)}")

    by_stem: dict[str, set[str]] = defaultdict(set)
    for name in names:
        if name:
            by_stem[PurePosixPath(name).stem].add(name)
    collisions = [sorted(group) for group in by_stem.values() if len(group) > 1]
    if collisions:
        problems.append(
            "names whose stems collide (outputs are named by stem, so one would overwrite "
            f"the other; rename them): {_short(collisions)}"
        )

    if problems:
        raise DatasetError("annotations.csv is not usable:\n  - " + "\n  - ".join(problems))

    label_columns = [c for c in table.columns if c != FILE_NAME_COLUMN]
    records = table[label_columns].to_dict(orient="records") if label_columns else [{}] * len(names)
    return [
        DatasetItem(file_name=name, path=audio_dir / name, labels=dict(labels))
        for name, labels in zip(names, records)
    ]


def _escapes(name: str) -> bool:
    """True for absolute paths and any ``..`` component, in POSIX or Windows spelling."""
    for pure in (PurePosixPath(name), PureWindowsPath(name)):
        if pure.is_absolute() or pure.anchor or ".." in pure.parts:
            return True
    return False


def _short(values: list, limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" ... ({len(values)} in all)" if len(values) > limit else "")


def corpus_fingerprint(items: Sequence[DatasetItem]) -> str:
    """The recordings a model or codebook was made from: names, sizes and modification times, order-free
    (a missing file counts as ``missing``)."""
    digest = hashlib.sha256()
    for name, fingerprint in sorted((item.file_name, _fingerprint_or_missing(item)) for item in items):
        digest.update(f"{name}\0{fingerprint}\n".encode())
    return digest.hexdigest()[:16]


def _fingerprint_or_missing(item: DatasetItem) -> str:
    try:
        return item.fingerprint()
    except OSError:
        return "missing"
