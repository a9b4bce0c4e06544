"""Log-mel spectrograms of time-expanded recordings, streamed through the runner into the store.

The default is the seed layout ``derived/mels_48k/<stem>.npy``: float32 log-mel (dB), shape
``(n_mels, T)``; any other configuration gets its own folder (``mels_48k-<hash>``), so
configurations live side by side. Arrays are written frame by frame as Fortran-ordered
``(n_mels, T)`` .npy files (a crop of frames is one contiguous read; ``np.load`` returns the
same shape as before). With auto time expansion at 48 kHz a 250 kHz file is slowed 5x, so
its 15-120 kHz band lands at 3-24 kHz, under the 24 kHz Nyquist.

The values are librosa's ``melspectrogram`` (centred frames, zero padding, periodic Hann,
Slaney mel filters, power 2) then ``power_to_db(ref=1, amin=1e-10)``, computed in blocks:
a streamed recording gives its whole-file spectrogram. The filterbank comes from librosa
(the ``mels`` extra), once per run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bat_core.dataset import Dataset
from bat_core.errors import MissingExtraError
from bat_core.provenance import config_dict, config_hash
from bat_core.runner import AppendOutputs, AudioPrepare, Piece, RunOptions, run_to_store
from bat_core.time_expansion import SignalConversion, TimeExpansion

if TYPE_CHECKING:  # the store (pandas) is not needed where mel frames are made: worker processes
    from bat_core.store import RepresentationStore, RunSummary

AMIN = 1e-10


@dataclass(frozen=True)
class MelConfig:
    """Everything that determines a mel array; its hash decides what is recomputed and where it lives."""

    sample_rate: int = 48_000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 500.0
    fmax: float | None = None  # None: the Nyquist of sample_rate
    time_expansion: TimeExpansion = field(default_factory=TimeExpansion)

    def __post_init__(self):
        if self.hop_length <= 0 or self.n_fft <= 0 or self.n_mels <= 0 or self.sample_rate <= 0:
            raise ValueError("sample_rate, n_fft, hop_length and n_mels must be positive")
        if not 16 <= self.n_fft <= 65_536 or self.sample_rate > 1_000_000:
            raise ValueError(f"need 16 <= n_fft <= 65536 and a sample rate up to 1 MHz, got n_fft {self.n_fft}, "
                             f"sample rate {self.sample_rate}")
        if self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(f"{self.n_mels} mel bands need more than the {self.n_fft // 2 + 1} frequency bins of "
                             f"n_fft {self.n_fft}: raise n_fft or lower n_mels")
        top = self.fmax if self.fmax is not None else self.sample_rate / 2
        if not 0 <= self.fmin < top <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= {self.sample_rate / 2:g} Hz, got {self.fmin}, {self.fmax}")

    @classmethod
    def from_dict(cls, values: dict) -> MelConfig:
        """Inverse of ``dataclasses.asdict`` (artefacts store the mel parameters they were trained on)."""
        values = dict(values)
        values["time_expansion"] = TimeExpansion(**values.get("time_expansion", {}))
        return cls(**values)

    @property
    def representation(self) -> str:
        """``mels_48k`` for the defaults (the seed layout); ``mels_<rate>-<config hash>`` for anything else."""
        rate = f"{self.sample_rate // 1000}k" if self.sample_rate % 1000 == 0 else str(self.sample_rate)
        return f"mels_{rate}" if self == MelConfig() else f"mels_{rate}-{config_hash(self)[:8]}"

    def frames_per_second(self, conversion: SignalConversion) -> float:
        """Mel frames per second of the original recording."""
        return self.sample_rate * conversion.time_expansion / self.hop_length


def mel_filterbank(config: MelConfig) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 Slaney mel filters (librosa's)."""
    try:
        import librosa
    except ImportError as error:
        raise MissingExtraError("mel spectrograms need librosa: pip install 'bat-core[mels]'") from error
    return librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin,
                               fmax=config.fmax).astype(np.float32)


class FrameStream:
    """Centred STFT frames (zero padding of ``n_fft // 2`` at both ends, as librosa) of a streamed signal."""

    def __init__(self, n_fft: int, hop: int):
        self.n_fft, self.hop = n_fft, hop
        self._buffer = np.zeros(n_fft // 2, dtype=np.float32)
        self.samples = 0
        self.emitted = 0

    def _frames(self, buffer: np.ndarray, count: int) -> np.ndarray:
        if count <= 0:
            return np.zeros((0, self.n_fft), dtype=np.float32)
        return np.lib.stride_tricks.sliding_window_view(buffer, self.n_fft)[:: self.hop][:count]

    def push(self, block: np.ndarray) -> np.ndarray:
        self.samples += len(block)
        buffer = np.concatenate([self._buffer, block])
        count = 0 if len(buffer) < self.n_fft else (len(buffer) - self.n_fft) // self.hop + 1
        frames = self._frames(buffer, count)
        self._buffer = buffer[count * self.hop:]
        self.emitted += count
        return frames

    def finish(self) -> np.ndarray:
        pad = self.n_fft // 2
        total = 1 + (self.samples + 2 * pad - self.n_fft) // self.hop
        buffer = np.concatenate([self._buffer, np.zeros(pad, dtype=np.float32)])
        frames = self._frames(buffer, total - self.emitted)
        self.emitted = total
        return frames


@dataclass(frozen=True)
class MelFrames:
    """Piece maker: a converted sample stream -> blocks of log-mel frames ``(t, n_mels)``, float32 dB."""

    config: MelConfig
    filterbank: np.ndarray  # from mel_filterbank(config), computed once in the main process

    @classmethod
    def for_config(cls, config: MelConfig) -> MelFrames:
        return cls(config, mel_filterbank(config))

    @property
    def piece_bytes(self) -> int:
        from bat_core.audio import BLOCK_FRAMES

        return (4 * BLOCK_FRAMES // self.config.hop_length + 2) * self.config.n_mels * 4

    def log_mel(self, frames: np.ndarray) -> np.ndarray:
        """(t, n_fft) sample frames -> (t, n_mels) dB (float64 FFT, float32 power and filterbank, as librosa)."""
        window = np.hanning(self.config.n_fft + 1)[:-1]  # periodic Hann, scipy's get_window("hann")
        spectrum = np.fft.rfft(frames * window, axis=1).astype(np.complex64)
        power = np.square(np.abs(spectrum))
        mel = power @ self.filterbank.T
        return (10.0 * np.log10(np.maximum(mel, AMIN))).astype(np.float32)

    def __call__(self, blocks: Iterator[np.ndarray]) -> Iterator[Piece]:
        stream = FrameStream(self.config.n_fft, self.config.hop_length)
        for block in blocks:
            frames = stream.push(block)
            if len(frames):
                yield Piece(self.log_mel(frames), length=len(frames))
        yield Piece(self.log_mel(stream.finish()), length=0)


def log_mel(samples: np.ndarray, config: MelConfig) -> np.ndarray:
    """float32 log-mel in dB, ``(n_mels, T)``, of audio already at ``config.sample_rate`` (in memory)."""
    maker = MelFrames.for_config(config)
    return np.concatenate([piece.data for piece in maker(iter([np.asarray(samples, dtype=np.float32)]))]).T


def mel_prepare(config: MelConfig) -> AudioPrepare:
    """Recording -> mel frame blocks, for any runner job that works on mels."""
    return AudioPrepare(MelFrames.for_config(config), config.sample_rate, config.time_expansion)


def mel_store(dataset: Dataset, config: MelConfig, shard: tuple[int, int] | None = None) -> RepresentationStore:
    from bat_core.store import RepresentationStore

    return RepresentationStore(
        dataset.paths, config.representation, dataset.paths.derived / config.representation, config,
        packages=("bat-core", "librosa", "soxr"), kind="features", shard=shard,
    )


def compute_mels(
    dataset: Dataset,
    config: MelConfig = MelConfig(),
    *,
    overwrite: bool = False,
    options: RunOptions = RunOptions(),
    shard: tuple[int, int] | None = None,
) -> RunSummary:
    """Write a mel array per file (resumable); bad files become failed manifest rows."""
    store = mel_store(dataset, config, shard)

    def assembler(item, output):
        return AppendOutputs(output, lambda info: config.frames_per_second(info.conversion), fortran=True)

    summary = run_to_store(dataset, store, mel_prepare(config), assembler, options=_described(options, "mels"),
                           overwrite=overwrite)
    (store.output_dir / "params.json").write_text(json.dumps(
        {"config_hash": store.config_hash, **config_dict(config)}, indent=2, default=str))
    return summary


def mel_rows(dataset: Dataset, config: MelConfig = MelConfig(), options: RunOptions = RunOptions()) -> dict[str, dict]:
    """Compute the mels still missing (resumable), then every dataset file's manifest row by file name
    (``status``, ``reason``, ``output_path`` relative to ``derived``, ``frames_per_second``, provenance)."""
    from bat_core.store import read_manifest

    compute_mels(dataset, config, options=options)
    wanted = {item.file_name for item in dataset}
    manifest = read_manifest(dataset.paths.manifest_path(config.representation))
    return {row["file_name"]: row for row in manifest.to_dict(orient="records") if row["file_name"] in wanted}


def load_mels(dataset: Dataset, config: MelConfig = MelConfig(), options: RunOptions = RunOptions()) -> dict[str, np.ndarray]:
    """The mel arrays of every dataset file that has one (computed where missing), memory-mapped, by file name."""
    rows = mel_rows(dataset, config, options)
    return {name: np.load(dataset.paths.derived / row["output_path"], mmap_mode="r")
            for name, row in rows.items() if row["status"] == "ok"}


def _described(options: RunOptions, description: str) -> RunOptions:
    from dataclasses import replace

    return options if options.description else replace(options, description=description)

