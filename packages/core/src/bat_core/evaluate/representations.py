"""Find what the strategies wrote (one manifest each) and load it as per-file arrays."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bat_core.paths import ProjectPaths
from bat_core.store import read_manifest

NOT_STRATEGIES = {"mels_48k"}  # inputs of strategies and baselines, not a representation to rank


@dataclass
class Representation:
    """One representation's ok outputs, by file name, plus the provenance a report must state."""

    name: str
    kind: str  # "tokens" or "embedding"
    arrays: dict[str, np.ndarray]
    files_ok: int
    files_failed: int
    codebook_size: int | None = None
    frames_per_second: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    failed_files: list[str] = field(default_factory=list)  # selected files whose row failed or whose output is gone
    missing_files: list[str] = field(default_factory=list)  # selected files this representation has no row for


NOT_RANKED_KINDS = {"cache"}  # intermediate results (encoder frames kept between a fit and its encode)


def discover(paths: ProjectPaths, names: list[str]) -> list[Representation]:
    """Every representation under ``derived/manifests`` (mel inputs and caches excepted), in name order,
    restricted to the selected file ``names``."""
    found = []
    for manifest_path in sorted(paths.manifests_dir.glob("*.parquet")):
        name = manifest_path.stem
        if name in NOT_STRATEGIES or name.startswith("mels_"):
            continue
        manifest = read_manifest(manifest_path)
        kinds = set(manifest.kind) - {""}
        if kinds and kinds <= NOT_RANKED_KINDS:
            continue
        found.append(load(paths, name, manifest, names))
    return found


def load(paths: ProjectPaths, name: str, manifest, names: list[str]) -> Representation:
    wanted = set(names)
    manifest = manifest[manifest.file_name.isin(wanted)]
    ok = manifest[manifest.status == "ok"]
    arrays, fps, seconds = {}, {}, {}
    failed = sorted(manifest[manifest.status != "ok"].file_name)
    for row in ok.to_dict(orient="records"):
        path = Path(row["output_path"])
        try:
            array = np.load(path if path.is_absolute() else paths.derived / path, mmap_mode="r")
        except (OSError, ValueError):  # deleted or damaged since: counted, never a crash
            failed.append(row["file_name"])
            continue
        arrays[row["file_name"]] = array
        fps[row["file_name"]] = row["frames_per_second"]
        seconds[row["file_name"]] = row["seconds"]
    kind = "tokens" if arrays and np.issubdtype(next(iter(arrays.values())).dtype, np.integer) else "embedding"
    first = ok.iloc[0].to_dict() if len(ok) else {}
    extra = json.loads(first.get("extra") or "{}")
    codebook_size = extra.get("k") or extra.get("codebook_size")
    if kind == "tokens" and codebook_size is None and arrays:
        codebook_size = int(max(int(a.max()) for a in arrays.values() if a.size) + 1)
    provenance = {
        "model_id": first.get("model_id", ""),
        "config_hash": ", ".join(sorted(set(ok.config_hash))) if len(ok) else "",
        "time_expansion": ", ".join(f"{t:g}" for t in sorted(set(ok.time_expansion.dropna()))) if len(ok) else "",
        "layer": str(extra.get("layer", "")),
    }
    missing = sorted(wanted - set(manifest.file_name))
    return Representation(name, kind, arrays, len(arrays), len(failed), int(codebook_size) if codebook_size else None,
                          fps, seconds, provenance, sorted(failed), missing)
