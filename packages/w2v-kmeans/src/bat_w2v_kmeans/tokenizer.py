"""The Python API: encoder frames -> k-means codebook -> integer tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bat_core.audio import load_audio
from bat_core.batching import chunks
from bat_core.dataset import Dataset, DatasetItem
from bat_core.errors import BatError
from bat_core.pipeline import iter_prepared, progress
from bat_core.time_expansion import SignalConversion, TimeExpansion, convert_for_model
from bat_w2v_kmeans.codebook import Codebook, CodebookInfo
from bat_w2v_kmeans.encoder import SpeechEncoder
from bat_w2v_kmeans.kmeans import Reservoir, fit_kmeans, nearest

FILES_PER_CHUNK = 32  # decoded recordings held at once; their windows are batched by length
SECONDS_PER_CHUNK = 600.0  # ...and at most this much model-time audio, so long recordings do not pile up


@dataclass
class FileFrames:
    item: DatasetItem
    frames: np.ndarray | None
    reason: str | None
    conversion: SignalConversion | None = None
    seconds: float = 0.0


class W2VKMeansTokenizer:
    def __init__(self, encoder: SpeechEncoder, expansion: TimeExpansion = TimeExpansion(), codebook: Codebook | None = None):
        self.encoder = encoder
        self.expansion = expansion
        self.codebook = codebook
        if codebook is not None:
            codebook.check_matches(self.info(k=codebook.info.k))

    @classmethod
    def from_pretrained(cls, codebook_dir: str | Path, model: str | None = None, device: str = "auto",
                        layer: int | None = None, expansion: TimeExpansion | None = None,
                        **encoder_kwargs) -> W2VKMeansTokenizer:
        """Codebook from ``codebook_dir`` with the encoder, layer and time expansion it was made with;
        any of them given explicitly must match the codebook (ConfigMismatchError otherwise)."""
        codebook = Codebook.load(codebook_dir)
        if layer is None and codebook.info.layer != "last":
            layer = int(codebook.info.layer)
        encoder = SpeechEncoder.from_pretrained(model or codebook.info.model_id, layer=layer, device=device, **encoder_kwargs)
        if expansion is None:
            low, high = codebook.info.band_hz
            expansion = TimeExpansion.parse(codebook.info.time_expansion, band_low_hz=low, band_high_hz=high)
        return cls(encoder, expansion, codebook)

    def info(self, k: int, **fields) -> CodebookInfo:
        return CodebookInfo(
            model_id=self.encoder.model_id, model_fingerprint=self.encoder.fingerprint(), layer=self.encoder.layer_name,
            time_expansion=self.expansion.describe(), band_hz=(self.expansion.band_low_hz, self.expansion.band_high_hz),
            model_sample_rate=self.encoder.sample_rate, samples_per_frame=self.encoder.samples_per_frame, k=k, **fields)

    def save(self, directory: str | Path) -> Path:
        return self._require_codebook().save(directory)

    def frames_per_second(self, conversion: SignalConversion) -> float:
        """Tokens per second of the original recording."""
        return self.encoder.sample_rate * conversion.time_expansion / self.encoder.samples_per_frame

    # -- single recordings --------------------------------------------------
    def frames(self, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, SignalConversion]:
        converted, conversion = convert_for_model(samples, sample_rate, self.encoder.sample_rate, self.expansion)
        return self.encoder.frames([converted])[0], conversion

    def encode(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """int16 tokens, one per encoder frame (``frames_per_second`` of the original audio)."""
        frames, _ = self.frames(np.asarray(samples, dtype=np.float32), sample_rate)
        return self.assign(frames)

    def assign(self, frames: np.ndarray) -> np.ndarray:
        codebook = self._require_codebook()
        device = self.encoder.device
        indices, _ = nearest(torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).to(device),
                             torch.from_numpy(codebook.centroids).to(device))
        return indices.cpu().numpy().astype(np.int16)

    # -- datasets -------------------------------------------------------------
    def iter_frames(self, items: list[DatasetItem], batch_size: int = 8, num_workers: int = 2,
                    show_progress: bool = True, description: str = "features") -> Iterator[FileFrames]:
        """Frames of every item in order; decoding and resampling run in background threads."""
        def prepare(item: DatasetItem):
            recording = load_audio(item.path)
            converted, conversion = convert_for_model(recording.samples, recording.sample_rate,
                                                      self.encoder.sample_rate, self.expansion)
            return converted, conversion, recording.seconds

        def model_seconds(prepared) -> float:
            _, result, _ = prepared
            return 0.0 if result is None else len(result[0]) / self.encoder.sample_rate

        prepared = progress(iter_prepared(items, prepare, num_workers), len(items), description, show_progress)
        for chunk in chunks(prepared, FILES_PER_CHUNK, SECONDS_PER_CHUNK, model_seconds):
            good = [(item, result) for item, result, reason in chunk if reason is None]
            frames = self.encoder.frames([result[0] for _, result in good], batch_size) if good else []
            by_name = {item.file_name: (result, f) for (item, result), f in zip(good, frames)}
            for item, _, reason in chunk:
                if reason is not None:
                    yield FileFrames(item, None, reason)
                else:
                    (_, conversion, seconds), f = by_name[item.file_name]
                    yield FileFrames(item, f, None, conversion, seconds)

    def fit(self, dataset: Dataset, k: int = 128, max_fit_frames: int = 50_000, seed: int = 0, batch_size: int = 8,
            num_workers: int = 2, show_progress: bool = True, frame_sink=None) -> Codebook:
        """Stream the corpus through the encoder into a bounded reservoir, then k-means it."""
        reservoir = Reservoir(max_fit_frames, self.encoder.hidden_size, seed)
        usable = 0
        for result in self.iter_frames(list(dataset), batch_size, num_workers, show_progress, "fit: features"):
            if result.frames is not None:
                reservoir.add(result.frames)
                usable += 1
            if frame_sink is not None:
                frame_sink(result)
        sample = reservoir.sample()
        if len(sample) < k:
            raise BatError(f"only {len(sample)} frames from {usable} readable files: too few for k={k}; "
                           "use more audio or a smaller --k")
        started = time.perf_counter()
        result = fit_kmeans(sample, k, seed=seed, device=self.encoder.device)
        self.codebook = Codebook(result.centroids, self.info(
            k=k, seed=seed, inertia=result.inertia, fit_frames=result.rows, frames_seen=reservoir.seen,
            extra={"iterations": result.iterations, "files": usable, "fit_seconds": time.perf_counter() - started}))
        return self.codebook

    def _require_codebook(self) -> Codebook:
        if self.codebook is None:
            raise BatError("no codebook yet: fit() one or load it with from_pretrained(DIR)")
        return self.codebook
