"""Tokens for a dataset through the bat-core store: ``derived/tokens/w2v_kmeans_<stem>.npy``."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bat_core.dataset import Dataset
from bat_core.store import RepresentationStore, RunSummary
from bat_w2v_kmeans.tokenizer import FileFrames, W2VKMeansTokenizer

REPRESENTATION = "w2v_kmeans"


def run_lengths(tokens: np.ndarray) -> np.ndarray:
    """(n_runs, 2) int32: each run's token and its length in frames (``--dedup``)."""
    if len(tokens) == 0:
        return np.zeros((0, 2), dtype=np.int32)
    starts = np.flatnonzero(np.r_[True, tokens[1:] != tokens[:-1]])
    lengths = np.diff(np.r_[starts, len(tokens)])
    return np.stack([tokens[starts], lengths], axis=1).astype(np.int32)


def token_store(dataset: Dataset, tokenizer: W2VKMeansTokenizer, dedup: bool) -> RepresentationStore:
    codebook = tokenizer._require_codebook()
    centroids_hash = hashlib.sha256(np.ascontiguousarray(codebook.centroids).tobytes()).hexdigest()[:16]
    config = {"codebook": centroids_hash, **codebook.info.identity(), "k": codebook.info.k, "dedup": dedup,
              "window_samples": tokenizer.encoder.window, "bucket_samples": tokenizer.encoder.bucket}
    return RepresentationStore(dataset.paths, REPRESENTATION, dataset.paths.tokens_dir, config,
                               file_pattern="w2v_kmeans_{stem}.npy", model_id=codebook.info.model_id,
                               packages=("bat-core", "bat-w2v-kmeans", "transformers"))


def encode_dataset(dataset: Dataset, tokenizer: W2VKMeansTokenizer, *, dedup: bool = False, overwrite: bool = False,
                   batch_size: int = 8, num_workers: int = 2, show_progress: bool = True,
                   frame_cache: Path | None = None) -> RunSummary:
    """int16 tokens per file; bad files become failed rows. ``frame_cache`` reuses frames dumped by ``fit``."""
    store = token_store(dataset, tokenizer, dedup)
    todo = store.begin(list(dataset), overwrite=overwrite)
    cached = [item for item in todo if frame_cache is not None and (frame_cache / f"{item.stem}.npz").is_file()]
    fresh = [item for item in todo if item not in cached]
    with store:
        for item in cached:
            with np.load(frame_cache / f"{item.stem}.npz") as saved:
                result = FileFrames(item, saved["frames"].astype(np.float32), None,
                                    _conversion(saved), float(saved["seconds"]))
            _write(store, tokenizer, result, dedup)
        for result in tokenizer.iter_frames(fresh, batch_size, num_workers, show_progress, "encode"):
            _write(store, tokenizer, result, dedup)
        return store.finish()


def _write(store: RepresentationStore, tokenizer: W2VKMeansTokenizer, result: FileFrames, dedup: bool) -> None:
    if result.frames is None:
        store.fail(result.item, result.reason or "unknown error")
        return
    tokens = tokenizer.assign(result.frames)
    store.write(result.item, tokens, frames_per_second=tokenizer.frames_per_second(result.conversion),
                seconds=result.seconds, conversion=result.conversion,
                extras={"runs": run_lengths(tokens)} if dedup else None,
                extra={"layer": tokenizer.encoder.layer_name, "k": tokenizer.codebook.info.k})


class FrameCache:
    """Frames dumped during ``fit`` (float16) so ``run`` encodes without a second encoder pass."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, result: FileFrames) -> None:
        if result.frames is None:
            return
        fields = {f"conversion_{k}": v for k, v in asdict(result.conversion).items()}
        np.savez(self.directory / f"{result.item.stem}.npz", frames=result.frames.astype(np.float16),
                 seconds=result.seconds, **fields)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _conversion(saved):
    from bat_core.time_expansion import SignalConversion

    values = {key.removeprefix("conversion_"): saved[key].item() for key in saved.files if key.startswith("conversion_")}
    return SignalConversion(**values)
