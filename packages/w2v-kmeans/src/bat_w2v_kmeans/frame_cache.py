"""``run``'s frame cache: the frames of its one encoder pass, kept until the tokens are written.

A representation of its own (``derived/cache/w2v_kmeans[-TAG]_frames/``, with its own manifest and
lock), written through the store: float32 frames appended as they come and renamed into place when
a file is complete, each row fingerprinted by its source file (size, mtime) and by the frames'
configuration (model weights, layer, time expansion, windows, precision). A killed run resumes from
it; a recording changed since, or frames of another configuration, are never reused. The folder is
removed when the run completes.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from bat_core.dataset import Dataset, DatasetItem
from bat_core.paths import ProjectPaths
from bat_core.runner import AppendOutputs
from bat_core.store import STATUS_OK, RepresentationStore
from bat_core.time_expansion import TimeExpansion
from bat_w2v_kmeans.encoder import SpeechEncoder
from bat_w2v_kmeans.pieces import CachedFile, CachedFrames

CONVERSION_COLUMNS = ("original_sample_rate", "time_expansion", "target_sample_rate", "kept_up_to_hz",
                      "discarded_energy_fraction", "band_warning")


class FrameCache:
    def __init__(self, dataset: Dataset, representation: str, encoder: SpeechEncoder, expansion: TimeExpansion):
        self.folder = dataset.paths.cache_dir / f"{representation}_frames"
        self.paths = ProjectPaths(root=dataset.paths.root, derived=self.folder)
        self.encoder = encoder
        self.config = {**encoder.settings(), "time_expansion": expansion.describe(),
                       "band_hz": [expansion.band_low_hz, expansion.band_high_hz]}
        self._store: RepresentationStore | None = None

    @property
    def store(self) -> RepresentationStore:
        if self._store is None:
            self._store = RepresentationStore(self.paths, "frames", self.folder / "frames", self.config,
                                              model_id=self.encoder.model_id, kind="features",
                                              packages=("bat-core", "bat-w2v-kmeans", "transformers"))
        return self._store

    def assembler(self, frames_per_second):
        """Frames arrive trimmed to each window's own share: appended as they are."""
        def make(item: DatasetItem, output) -> AppendOutputs:
            return AppendOutputs(output, frames_per_second)
        return make

    def prepare(self, items: Sequence[DatasetItem], failures: dict[str, str] | None = None) -> CachedFrames:
        """A prepare reading these items' cached frames (only rows of this configuration, of unchanged files)."""
        store = self.store
        rows = {row["file_name"]: row for row in store.read_manifest().to_dict(orient="records")}
        files = {}
        for item in items:
            row = rows.get(item.file_name)
            if row is None or row["status"] != STATUS_OK or row["config_hash"] != store.config_hash:
                continue
            path = Path(row["output_path"])
            path = path if path.is_absolute() else self.paths.derived / path
            conversion = {column: row[column] for column in CONVERSION_COLUMNS}
            conversion = {**conversion, "original_sample_rate": int(conversion["original_sample_rate"]),
                          "target_sample_rate": int(conversion["target_sample_rate"]),
                          "band_warning": bool(conversion["band_warning"]),
                          **{c: float(conversion[c]) for c in ("time_expansion", "kept_up_to_hz",
                                                               "discarded_energy_fraction")}}
            files[item.file_name] = CachedFile(str(path), row["source_fingerprint"], float(row["seconds"]), conversion)
        return CachedFrames(files, dict(failures or {}), dim=self.encoder.hidden_size)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # derived/cache itself, when nothing else is cached there
            self.folder.parent.rmdir()
        self._store = None
