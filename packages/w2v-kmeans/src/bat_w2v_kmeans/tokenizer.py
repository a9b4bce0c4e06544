"""The Python API: encoder frames -> k-means codebook -> integer tokens.

``fit`` streams a dataset through the bat-core runner into an order-free sample (``HashedSample``:
the same rows whatever the file order, the number of workers or the shard that saw them) and fits
k-means on it. ``encode`` tokenises one recording held in memory through the very same pieces,
batches and assignment as a dataset run, so it gives the same tokens as the runner for that file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bat_core.audio import BLOCK_FRAMES, check_samples
from bat_core.calls import CallPrepare, CallSelection
from bat_core.dataset import Dataset, DatasetItem, corpus_fingerprint
from bat_core.errors import AudioError, BatError
from bat_core.kmeans import HashedSample, fit_kmeans
from bat_core.runner import AppendOutputs, AudioPrepare, FileInfo, Piece, RunOptions, run
from bat_core.time_expansion import SignalConversion, SignalConverter, TimeExpansion
from bat_w2v_kmeans.codebook import Codebook, CodebookInfo
from bat_w2v_kmeans.defaults import DEFAULT_K, DEFAULT_MAX_FIT_FRAMES
from bat_w2v_kmeans.encoder import SpeechEncoder
from bat_w2v_kmeans.forward import OwnedFrames, SampledRows, Tokens, assign, centroids_on
from bat_w2v_kmeans.pieces import WindowPieces
from bat_w2v_kmeans.sinks import SampleSink
from bat_w2v_kmeans.trained_on import check_heard_as_now

MAX_K = int(np.iinfo(np.int16).max) + 1  # tokens are int16


class NotEnoughFramesError(BatError):
    """The fit saw fewer frames than centroids asked for."""


class W2VKMeansTokenizer:
    def __init__(self, encoder: SpeechEncoder, expansion: TimeExpansion = TimeExpansion(),
                 codebook: Codebook | None = None):
        self.encoder = encoder
        self.expansion = expansion
        self.codebook: Codebook | None = None
        self.calls: CallSelection | None = None  # per-call mode: encode (and fit on) these calls, not whole files
        if codebook is not None:
            self.use(codebook)

    @classmethod
    def from_pretrained(cls, codebook_dir: str | Path, model: str | None = None, device: str = "auto",
                        layer: int | None = None, expansion: TimeExpansion | None = None,
                        **encoder_kwargs) -> W2VKMeansTokenizer:
        """Codebook from ``codebook_dir`` with the encoder, layer, time expansion and windows it was made
        with; model, layer and time expansion given explicitly must match the codebook (ConfigMismatchError
        otherwise)."""
        codebook = Codebook.load(codebook_dir)
        if layer is None and codebook.info.layer != "last":
            layer = int(codebook.info.layer)
        info = codebook.info
        if encoder_kwargs.get("window_seconds") is None and info.window_samples and info.hop_samples:
            encoder_kwargs["window_seconds"] = info.window_samples / info.model_sample_rate
            encoder_kwargs["overlap_seconds"] = (info.window_samples - info.hop_samples) / info.model_sample_rate
        encoder_kwargs = {key: value for key, value in encoder_kwargs.items() if value is not None}
        check_heard_as_now(model or codebook.info.model_id)
        encoder = SpeechEncoder.from_pretrained(model or codebook.info.model_id, layer=layer, device=device,
                                                **encoder_kwargs)
        if expansion is None:
            low, high = codebook.info.band_hz
            expansion = TimeExpansion.parse(codebook.info.time_expansion, band_low_hz=low, band_high_hz=high)
        return cls(encoder, expansion, codebook)

    def use(self, codebook: Codebook) -> None:
        """Tokenise with ``codebook``; refused when it was made with another model, layer or time expansion."""
        codebook.check_matches(self.info(k=codebook.info.k))
        self.codebook = codebook

    def info(self, k: int, **fields) -> CodebookInfo:
        settings = self.encoder.settings()
        return CodebookInfo(
            model_id=self.encoder.model_id, model_fingerprint=self.encoder.fingerprint(), layer=self.encoder.layer_name,
            time_expansion=self.expansion.describe(), band_hz=(self.expansion.band_low_hz, self.expansion.band_high_hz),
            model_sample_rate=self.encoder.sample_rate, samples_per_frame=self.encoder.samples_per_frame, k=k,
            window_samples=settings["window_samples"], hop_samples=settings["hop_samples"],
            bucket_samples=settings["bucket_samples"], precision=settings["precision"], **fields)

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        return self.require_codebook().save(directory, overwrite=overwrite)

    def require_codebook(self) -> Codebook:
        if self.codebook is None:
            raise BatError("no codebook yet: fit() one or load it with from_pretrained(DIR)")
        return self.codebook

    def frames_per_second(self, conversion: SignalConversion) -> float:
        """Tokens per second of the original recording."""
        return self.encoder.sample_rate * conversion.time_expansion / self.encoder.samples_per_frame

    def prepare(self) -> AudioPrepare | CallPrepare:
        """Recording (or each of its calls, in per-call mode) -> normalised windows at the encoder's rate (runs
        in the decoding processes)."""
        prepare = self.encoder.prepare(self.expansion)
        if self.calls is None:
            return prepare
        return CallPrepare(prepare, self.calls, min_samples=self.encoder.pieces().min_length)

    def token_config(self, dedup: bool = False) -> dict:
        """Everything a token array depends on: its config hash decides what is stale."""
        codebook = self.require_codebook()
        return {"codebook": codebook.fingerprint(), "k": codebook.info.k, **self.encoder.settings(),
                "time_expansion": self.expansion.describe(),
                "band_hz": [self.expansion.band_low_hz, self.expansion.band_high_hz], "dedup": dedup,
                **({"calls": self.calls.settings()} if self.calls is not None else {})}

    # -- fit ----------------------------------------------------------------------------------------
    def new_sample(self, max_fit_frames: int, seed: int) -> HashedSample:
        if max_fit_frames < 1:
            raise BatError(f"--max-fit-frames must be >= 1, got {max_fit_frames}")
        return HashedSample(max_fit_frames, self.encoder.hidden_size, seed)

    def fit(self, dataset: Dataset | Sequence[DatasetItem], k: int = DEFAULT_K,
            max_fit_frames: int = DEFAULT_MAX_FIT_FRAMES, seed: int = 0, options: RunOptions = RunOptions()) -> Codebook:
        """Stream the recordings through the encoder into a bounded sample, then k-means it. Files that
        cannot be used are listed in the codebook's ``failed_files``; too few frames raise NotEnoughFramesError."""
        check_k(k, max_fit_frames)
        items = list(dataset)
        if options.ray is not None:
            sample, done, failures = self._sample_on_ray(items, max_fit_frames, seed, described(options, "fit"))
            return self.fit_sample(sample, k, seed, max_fit_frames, items, done, failures)
        worker = _FitWorker(self, max_fit_frames, seed)
        worker.run(items, described(options, "fit"))
        sample, done, failures = worker.result()
        return self.fit_sample(sample, k, seed, max_fit_frames, items, done, failures)

    def _sample_on_ray(self, items: list[DatasetItem], max_fit_frames: int, seed: int, options: RunOptions
                       ) -> tuple[HashedSample, list[str], list[tuple[str, str]]]:
        """Each Ray actor fills its own bounded sample from its share of the files; they are merged here
        (a row's priority depends only on its file and position: the same sample as one process makes)."""
        from bat_core.ray_engine import gather_on_ray

        results, lost = gather_on_ray(items, partial(_FitWorker, self, max_fit_frames, seed), options)
        sample, done = self.new_sample(max_fit_frames, seed), []
        failures = [(item.file_name, "the Ray worker sampling this file died") for item in lost]
        for (part, part_done, part_failures), _ in results:
            sample.merge(part)
            done += part_done
            failures += part_failures
        return sample, done, failures

    def fit_sample(self, sample: HashedSample, k: int, seed: int, max_fit_frames: int, items: Sequence[DatasetItem],
                   done: Sequence[str], failures: Sequence[tuple[str, str]]) -> Codebook:
        """k-means on a filled sample; the codebook records which files fed it and which failed."""
        check_k(k)
        rows = sample.sample()
        if len(rows) < k:
            failed = f"; {len(failures)} failed: " + ", ".join(name for name, _ in failures[:5]) if failures else ""
            raise NotEnoughFramesError(
                f"only {len(rows)} frames from {len(done)} of {len(items)} files{failed}: too few for k={k}; use more "
                "audio or a smaller --k")
        started = time.perf_counter()
        result = fit_kmeans(rows, k, seed=seed, device=self.encoder.device)
        self.codebook = Codebook(result.centroids, self.info(
            k=k, seed=seed, inertia=result.inertia, fit_frames=result.rows, frames_seen=sample.seen,
            max_fit_frames=max_fit_frames, data_fingerprint=corpus_fingerprint(items), files_given=len(items),
            files_done=len(done), failed_files=[[name, reason] for name, reason in failures],
            extra={"iterations": result.iterations, "fit_seconds": time.perf_counter() - started,
                   **({"fitted_on_calls": {**self.calls.settings(), "calls": self.calls.calls}} if self.calls else {})}))
        return self.codebook

    # -- single recordings ----------------------------------------------------------------------------
    def encode(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """int16 tokens, one per encoder frame (``frames_per_second`` of the original audio): the same as
        a dataset run gives for this recording."""
        codebook = self.require_codebook()
        outputs, _ = self._in_memory(samples, sample_rate, Tokens(self.encoder, codebook.centroids),
                                     stride=self.encoder.samples_per_frame)
        tokens = np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.int16)
        if len(tokens) and tokens.min() < 0:
            raise AudioError("the encoder gave frames with NaN/inf values for this recording")
        return tokens

    def frames(self, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, SignalConversion]:
        """float32 (T, hidden) frames of one recording, windows stitched, and what was done to its signal."""
        outputs, info = self._in_memory(samples, sample_rate, OwnedFrames(self.encoder), stride=None)
        return np.concatenate(outputs), info.conversion

    def assign(self, frames: np.ndarray) -> np.ndarray:
        """int16 nearest centroid of each frame (as every encoding path assigns them)."""
        codebook = self.require_codebook()
        device = self.encoder.device
        with torch.inference_mode():
            rows = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).to(device)
            return assign(rows, centroids_on(device, codebook.centroids)).cpu().numpy()

    def _in_memory(self, samples: np.ndarray, sample_rate: int, encoder: Any, stride: int | None
                   ) -> tuple[list[np.ndarray], FileInfo]:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 2:  # (n, channels), mixed as read_blocks mixes a file's channels
            samples = samples.mean(axis=1, dtype=np.float32)
        samples = check_samples(samples, "the samples given")
        if len(samples) == 0:
            raise AudioError("no audio samples given")
        prepare = _InMemory(samples, int(sample_rate), self.encoder.sample_rate, self.expansion, self.encoder.pieces())
        sink = _Collected(stride)
        run([DatasetItem("<in memory>", Path("<in memory>"))], prepare, sink, encoder,
            RunOptions(workers=0, show_progress=False))
        if sink.failure is not None:
            raise AudioError(sink.failure)
        return sink.outputs, sink.info


class _FitWorker:
    """The fit's encoder pass over some files into one bounded sample (here, or in a Ray actor)."""

    def __init__(self, tokenizer: W2VKMeansTokenizer, max_fit_frames: int, seed: int):
        self.tokenizer = tokenizer
        self.sample = tokenizer.new_sample(max_fit_frames, seed)
        self.sink = SampleSink(self.sample)

    def run(self, items: Sequence[DatasetItem], options: RunOptions = RunOptions(workers=0, show_progress=False)) -> None:
        encoder = SampledRows(self.tokenizer.encoder, self.sample, [item.file_name for item in items])
        run(items, self.tokenizer.prepare(), self.sink, encoder, options)

    def result(self) -> tuple[HashedSample, list[str], list[tuple[str, str]]]:
        return self.sample, self.sink.done_files, self.sink.failures


@dataclass(frozen=True)
class _InMemory:
    """A prepare for samples held in memory: the blocks ``read_blocks`` would give, converted as
    ``AudioPrepare`` converts them, cut by the encoder's piece maker."""

    samples: np.ndarray
    sample_rate: int
    target_rate: int
    expansion: TimeExpansion
    pieces: WindowPieces

    def __call__(self, item: DatasetItem) -> Iterator[Piece | FileInfo]:
        converter = SignalConverter(self.sample_rate, self.target_rate, self.expansion)
        blocks = (self.samples[start:start + BLOCK_FRAMES] for start in range(0, len(self.samples), BLOCK_FRAMES))
        yield from self.pieces(converter.stream(blocks))
        yield FileInfo(seconds=len(self.samples) / self.sample_rate, conversion=converter.conversion)


class _Collected:
    """Runner sink for one in-memory recording: outputs kept (windows trimmed to their share when ``stride``)."""

    def __init__(self, stride: int | None):
        self.outputs: list[np.ndarray] = []
        self.assembler = AppendOutputs(self, stride=stride)
        self.info: FileInfo | None = None
        self.failure: str | None = None

    def append(self, array: np.ndarray, name: str = "", fortran: bool = False) -> None:
        self.outputs.append(np.array(array))

    def add(self, item: DatasetItem, piece: Piece, output: Any) -> None:
        self.assembler.add(piece, output)

    def done(self, item: DatasetItem, info: FileInfo) -> None:
        self.info = info

    def fail(self, item: DatasetItem, reason: str) -> None:
        self.failure = reason


def check_k(k: int, max_fit_frames: int | None = None) -> None:
    """A usage error before any work: tokens are int16, and k-means needs at least k sampled frames."""
    if not 1 <= k <= MAX_K:
        raise BatError(f"--k must be 1..{MAX_K} (tokens are int16), got {k}")
    if max_fit_frames is not None and max_fit_frames < k:
        raise BatError(f"--max-fit-frames {max_fit_frames} is fewer than --k {k}: k-means needs at least k frames")


def described(options: RunOptions, description: str) -> RunOptions:
    return options if options.description else replace(options, description=description)
