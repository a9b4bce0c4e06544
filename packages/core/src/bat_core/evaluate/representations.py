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


def discover(paths: ProjectPaths) -> list[Representation]:
    """Every manifest under ``derived/manifests`` except the mel inputs, in name order."""
    found = []
    for manifest_path in sorted(paths.manifests_dir.glob("*.parquet")):
        name = manifest_path.stem
        if name in NOT_STRATEGIES or name.startswith("mels_"):
            continue
        found.append(load(paths, name, manifest_path))
    return found


def load(paths: ProjectPaths, name: str, manifest_path: Path) -> Representation:
    manifest = read_manifest(manifest_path)
    ok = manifest[manifest.status == "ok"]
    arrays, fps, seconds = {}, {}, {}
    for row in ok.to_dict(orient="records"):
        path = Path(row["output_path"])
        array = np.load(path if path.is_absolute() else paths.derived / path)
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
    return Representation(name, kind, arrays, len(ok), int((manifest.status == "failed").sum()),
                          int(codebook_size) if codebook_size else None, fps, seconds, provenance)
