"""Log-mel spectrograms of time-expanded recordings, written through the store.

The default is the seed layout ``derived/mels_48k/<stem>.npy``: float32 log-mel
(dB), shape ``(n_mels, T)``. With auto time expansion at 48 kHz a 250 kHz file is
slowed 5x, so its 15-120 kHz band lands at 3-24 kHz, under the 24 kHz Nyquist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import librosa
import numpy as np

from bat_core.audio import load_audio
from bat_core.dataset import Dataset, DatasetItem
from bat_core.pipeline import iter_prepared, progress
from bat_core.provenance import config_dict
from bat_core.store import RepresentationStore, RunSummary, read_manifest
from bat_core.time_expansion import SignalConversion, TimeExpansion, convert_for_model


@dataclass(frozen=True)
class MelConfig:
    """Everything that determines a mel array; its hash decides what is recomputed."""

    sample_rate: int = 48_000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    fmin: float = 500.0
    fmax: float | None = None  # None: the Nyquist of sample_rate
    time_expansion: TimeExpansion = field(default_factory=TimeExpansion)

    def __post_init__(self):
        if self.hop_length <= 0 or self.n_fft <= 0 or self.n_mels <= 0:
            raise ValueError("n_fft, hop_length and n_mels must be positive")
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
        return f"mels_{self.sample_rate // 1000}k" if self.sample_rate % 1000 == 0 else f"mels_{self.sample_rate}"

    def frames_per_second(self, conversion: SignalConversion) -> float:
        """Mel frames per second of the original recording."""
        return self.sample_rate * conversion.time_expansion / self.hop_length


def log_mel(samples: np.ndarray, config: MelConfig) -> np.ndarray:
    """float32 log-mel in dB, ``(n_mels, T)``, of audio already at ``config.sample_rate``."""
    power = librosa.feature.melspectrogram(
        y=samples, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
        n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax, power=2.0,
    )
    return librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)


def mel_for_file(item: DatasetItem, config: MelConfig) -> tuple[np.ndarray, SignalConversion, float]:
    """Load, time-expand, resample and transform one file; returns mel, conversion, seconds."""
    recording = load_audio(item.path)
    samples, conversion = convert_for_model(
        recording.samples, recording.sample_rate, config.sample_rate, config.time_expansion
    )
    return log_mel(samples, config), conversion, recording.seconds


def mel_store(dataset: Dataset, config: MelConfig) -> RepresentationStore:
    return RepresentationStore(
        dataset.paths, config.representation, dataset.paths.mels_dir(config.sample_rate), config,
        packages=("bat-core", "librosa", "soxr"),
    )


def compute_mels(
    dataset: Dataset,
    config: MelConfig = MelConfig(),
    *,
    overwrite: bool = False,
    num_workers: int = 0,
    show_progress: bool = True,
) -> RunSummary:
    """Write a mel array per file (resumable); bad files become failed manifest rows."""
    store = mel_store(dataset, config)
    todo = store.begin(list(dataset), overwrite=overwrite)
    params_path = store.output_dir / "params.json"
    params_path.write_text(json.dumps(
        {"config_hash": store.config_hash, **config_dict(config)}, indent=2, default=str
    ))
    with store:
        results = iter_prepared(todo, lambda item: mel_for_file(item, config), num_workers)
        for item, result, reason in progress(results, len(todo), "mels", show_progress):
            if reason is not None:
                store.fail(item, reason)
                continue
            mel, conversion, seconds = result
            store.write(
                item, mel, frames_per_second=config.frames_per_second(conversion),
                seconds=seconds, conversion=conversion,
            )
        return store.finish()


def mel_rows(dataset: Dataset, config: MelConfig = MelConfig(), *, num_workers: int = 2,
             show_progress: bool = True) -> dict[str, dict]:
    """Compute the mels still missing (resumable), then every dataset file's manifest row by file name
    (``status``, ``reason``, ``output_path`` relative to ``derived``, ``frames_per_second``, provenance)."""
    compute_mels(dataset, config, num_workers=num_workers, show_progress=show_progress)
    wanted = {item.file_name for item in dataset}
    manifest = read_manifest(dataset.paths.manifest_path(config.representation))
    return {row["file_name"]: row for row in manifest.to_dict(orient="records") if row["file_name"] in wanted}


def load_mels(dataset: Dataset, config: MelConfig = MelConfig(), **kwargs) -> dict[str, np.ndarray]:
    """The mel arrays of every dataset file that has one (computed where missing), by file name."""
    rows = mel_rows(dataset, config, **kwargs)
    return {name: np.load(dataset.paths.derived / row["output_path"]) for name, row in rows.items() if row["status"] == "ok"}
