"""Floors and references computed the same way as the strategies: every number needs a baseline.

- majority: always predict the most common training label;
- mfcc_kmeans: MFCCs of the (time-expanded) log-mels, k-means tokens, bag of tokens;
- mean_log_mel: the time-average of each file's log-mel spectrogram.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from scipy.fft import dct
from sklearn.cluster import KMeans

MFCC_COEFFICIENTS = 20
MFCC_CODES = 64
MFCC_FIT_FRAMES = 20_000


def baseline_mels(dataset, config, options) -> tuple[dict[str, np.ndarray], dict[str, float], dict, list[str]]:
    """The selected files' mels (arrays, frames per second), their provenance and notes. Mels already in the
    store are read; missing ones are computed in a temporary folder and read back, never saved in the
    store: evaluate only reads the representations."""
    from bat_core.dataset import Dataset
    from bat_core.mels import compute_mels
    from bat_core.paths import ProjectPaths
    from bat_core.store import read_manifest

    wanted = [item.file_name for item in dataset]
    manifest = read_manifest(dataset.paths.manifest_path(config.representation))
    stored = {row["file_name"]: row for row in manifest.to_dict(orient="records")
              if row["file_name"] in set(wanted) and row["status"] == "ok"}
    mels, fps, rows = {}, {}, []
    for name, row in stored.items():
        path = dataset.paths.derived / row["output_path"]
        if path.is_file():
            mels[name], fps[name] = np.load(path, mmap_mode="r"), row["frames_per_second"]
            rows.append(row)
    notes = []
    absent = [item for item in dataset if item.file_name not in mels]
    if absent:
        with tempfile.TemporaryDirectory(prefix="bat-evaluate-mels-") as scratch:
            paths = ProjectPaths(root=dataset.paths.root, derived=Path(scratch))
            compute_mels(Dataset(paths, absent, dataset.label_columns), config, options=options)
            for row in read_manifest(paths.manifest_path(config.representation)).to_dict(orient="records"):
                if row["status"] == "ok":
                    mels[row["file_name"]] = np.load(paths.derived / row["output_path"])
                    fps[row["file_name"]] = row["frames_per_second"]
                    rows.append(row)
        computed = sum(1 for item in absent if item.file_name in mels)
        notes.append(f"baselines: {computed} of {len(wanted)} mels computed for this report in a temporary folder "
                     f"(not saved; `bat-core mels` stores them), {len(absent) - computed} could not be computed")
    provenance = {
        "model_id": "bat-core baseline",
        "config_hash": ", ".join(sorted({row["config_hash"] for row in rows})),
        "package_versions": rows[0]["package_versions"] if rows else "",
        "time_expansion": f"{config.time_expansion.describe()} ({config.representation})",
        "layer": "",
    }
    return mels, fps, provenance, notes


def mfcc(mel_db: np.ndarray, n_coefficients: int = MFCC_COEFFICIENTS) -> np.ndarray:
    """(T, n) MFCC frames from a log-mel (n_mels, T) in dB (type-II orthonormal DCT, as librosa)."""
    return dct(mel_db, type=2, axis=0, norm="ortho")[:n_coefficients].T.astype(np.float32)


def mfcc_kmeans_tokens(mels: dict[str, np.ndarray], seed: int = 0, codes: int = MFCC_CODES) -> dict[str, np.ndarray]:
    frames = {name: mfcc(mel) for name, mel in mels.items()}
    stacked = np.concatenate(list(frames.values()))
    rng = np.random.default_rng(seed)
    sample = stacked[rng.choice(len(stacked), min(len(stacked), MFCC_FIT_FRAMES), replace=False)]
    kmeans = KMeans(min(codes, len(sample)), n_init=1, random_state=seed).fit(sample)
    return {name: kmeans.predict(f).astype(np.int16) for name, f in frames.items()}


def mean_log_mel(mels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: mel.mean(axis=1) for name, mel in mels.items()}
