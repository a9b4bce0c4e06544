"""Find what the strategies wrote (one manifest each): per-file output paths and the provenance a report
must state. Arrays are read one at a time (``Representation.arrays()``) and never written."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bat_core.paths import ProjectPaths
from bat_core.store import read_manifest

NOT_STRATEGIES = {"mels_48k"}  # inputs of strategies and baselines, not a representation to rank
NOT_RANKED_KINDS = {"cache", "segments"}  # intermediate results (encoder frames kept between a fit and its encode), call boxes


@dataclass
class Representation:
    """One representation's ok outputs, by file name, plus the provenance a report must state."""

    name: str
    kind: str  # "tokens" or "embedding"
    paths: dict[str, Path]
    codebook_size: int | None = None
    frames_per_second: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    failed_files: list[str] = field(default_factory=list)  # selected files whose row failed or whose output is gone
    missing_files: list[str] = field(default_factory=list)  # selected files this representation has no row for
    notes: list[str] = field(default_factory=list)
    per_call: bool = False  # outputs of a --segments run: a file's calls one after another (bat_core.calls)
    sequences: dict[str, tuple[Path, float]] = field(default_factory=dict)  # embeddings pooled per file: their
    # sequence along time (``.sequence.npy``) and its frames per second, where the strategy kept one

    @property
    def files_ok(self) -> int:
        return len(self.paths)

    @property
    def files_failed(self) -> int:
        return len(self.failed_files)

    def array(self, file_name: str) -> np.ndarray:
        return np.load(self.paths[file_name])

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """Each ok file's array in turn; one that cannot be read, or holds codes outside the codebook,
        becomes a failed file (with a note) instead of a crash."""
        for file_name in list(self.paths):
            try:
                array = self.array(file_name)
            except (OSError, ValueError) as error:
                self._fail(file_name, f"unreadable output ({error.__class__.__name__})")
                continue
            if self.kind == "tokens" and self.codebook_size and array.size and (array.min() < 0 or array.max() >= self.codebook_size):
                self._fail(file_name, f"codes outside 0..{self.codebook_size - 1}")
                continue
            yield file_name, array

    def _fail(self, file_name: str, reason: str) -> None:
        del self.paths[file_name]
        self.failed_files = sorted({*self.failed_files, file_name})
        self.notes.append(f"{file_name}: {reason}, counted as failed")


def discover(paths: ProjectPaths, names: list[str], per_call: list[str] | None = None,
             calls: bool = False) -> list[Representation]:
    """Every representation under ``derived/manifests`` (mel inputs and caches excepted), in name order,
    restricted to the selected file ``names``. Per-call representations (``--segments``) hold a file's calls,
    not the file: a per-file evaluation leaves them out and names them in ``per_call``; a per-call one
    (``calls``) reads them too."""
    found = []
    for manifest_path in sorted(paths.manifests_dir.glob("*.parquet")):
        name = manifest_path.stem
        if name in NOT_STRATEGIES or name.startswith("mels_"):
            continue
        manifest = read_manifest(manifest_path)
        calls_run = bool(manifest.extra.str.contains('"per_call": true', regex=False).any())
        if calls_run and not calls:
            if per_call is not None:
                per_call.append(name)
            continue
        kinds = set(manifest.kind) - {""}
        if kinds and kinds <= NOT_RANKED_KINDS:
            continue
        representation = load(paths, name, manifest, names)
        representation.per_call = calls_run
        found.append(representation)
    return found


def load(paths: ProjectPaths, name: str, manifest, names: list[str]) -> Representation:
    wanted = set(names)
    manifest = manifest[manifest.file_name.isin(wanted)]
    ok = manifest[manifest.status == "ok"]
    failed = set(manifest[manifest.status != "ok"].file_name)
    notes = []
    versions = Counter(zip(ok.config_hash, ok.codebook_size.fillna(0).astype(int)))
    if len(versions) > 1:  # two codebooks (or settings) in one manifest: evaluate one, count the rest
        (kept_hash, kept_size), kept_files = versions.most_common(1)[0]
        others = ok[(ok.config_hash != kept_hash) | (ok.codebook_size.fillna(0).astype(int) != kept_size)]
        notes.append(f"manifest mixes {len(versions)} configurations or codebooks: evaluated the {kept_files} files of "
                     f"config {kept_hash[:12]}; {len(others)} files of the others counted as failed (rerun the strategy)")
        failed |= set(others.file_name)
        ok = ok.drop(others.index)
    output_paths, fps, seconds, sequences = {}, {}, {}, {}
    for row in ok.to_dict(orient="records"):
        path = Path(row["output_path"])
        path = path if path.is_absolute() else paths.derived / path
        if not path.is_file():  # deleted since: counted, never a crash
            failed.add(row["file_name"])
            continue
        output_paths[row["file_name"]] = path
        fps[row["file_name"]] = row["frames_per_second"]
        seconds[row["file_name"]] = row["seconds"]
        sequence_fps = json.loads(row.get("extra") or "{}").get("sequence_frames_per_second")
        if "sequence" in json.loads(row.get("extras") or "[]") and sequence_fps:
            sequences[row["file_name"]] = (path.with_name(path.name[: -len(".npy")] + ".sequence.npy"), float(sequence_fps))
    first = ok.iloc[0].to_dict() if len(ok) else {}
    extra = json.loads(first.get("extra") or "{}")
    kind = first.get("kind") or ""
    if kind not in ("tokens", "embedding"):
        sample = np.load(next(iter(output_paths.values())), mmap_mode="r") if output_paths else None
        kind = "tokens" if sample is not None and np.issubdtype(sample.dtype, np.integer) else "embedding"
    recorded = first.get("codebook_size")
    codebook_size = (None if recorded is None or pd.isna(recorded) else int(recorded)) or extra.get("k") or extra.get("codebook_size")
    if kind == "tokens" and not codebook_size and output_paths:  # old manifests: the largest code read + 1
        codebook_size = int(max((int(a.max()) for a in map(np.load, output_paths.values()) if a.size), default=0) + 1)
    provenance = {
        "model_id": first.get("model_id", ""),
        "config_hash": ", ".join(sorted(set(ok.config_hash))) if len(ok) else "",
        "package_versions": first.get("package_versions", ""),
        "time_expansion": ", ".join(f"{t:g}" for t in sorted(set(ok.time_expansion.dropna()))) if len(ok) else "",
        "layer": str(extra.get("layer", "")),
    }
    missing = sorted(wanted - set(manifest.file_name))
    return Representation(name, kind, output_paths, int(codebook_size) if codebook_size else None, fps, seconds,
                          provenance, sorted(failed), missing, notes, sequences=sequences)
