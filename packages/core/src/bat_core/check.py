"""A dataset report: what is in a project and what is wrong with it, before any model runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from bat_core.audio import load_audio
from bat_core.dataset import Dataset, DatasetItem
from bat_core.errors import AudioError
from bat_core.pipeline import iter_prepared, progress
from bat_core.spectrum import band_share
from bat_core.time_expansion import DEFAULT_BAT_BAND_HZ


@dataclass(frozen=True)
class FileReport:
    file_name: str
    sample_rate: int | None = None
    channels: int | None = None
    seconds: float | None = None
    band_covered_fraction: float | None = None  # share of the bat band under the file's Nyquist
    band_energy_fraction: float | None = None  # share of spectral energy inside the bat band
    problem: str = ""  # why the file cannot be used at all
    notes: str = ""  # usable, but worth knowing (mixed to mono, partial band, silence)


def check_file(item: DatasetItem, band: tuple[float, float] = DEFAULT_BAT_BAND_HZ) -> FileReport:
    try:
        recording = load_audio(item.path)
    except AudioError as error:
        return FileReport(item.file_name, problem=str(error))
    low, high = band
    nyquist = recording.sample_rate / 2
    covered = max(0.0, min(nyquist, high) - low) / (high - low)
    in_band = band_share(recording.samples, recording.sample_rate, low, high)
    silent = not np.any(recording.samples)
    notes = []
    if recording.channels > 1:
        notes.append(f"{recording.channels} channels (mixed to mono)")
    if covered < 1:
        notes.append(f"Nyquist {nyquist / 1000:g} kHz covers {100 * covered:.0f}% of the bat band")
    if silent:
        notes.append("digital silence")
    return FileReport(
        item.file_name, recording.sample_rate, recording.channels, recording.seconds,
        covered, in_band, notes="; ".join(notes),
    )


@dataclass
class DatasetReport:
    files: list[FileReport]

    @property
    def problems(self) -> list[FileReport]:
        return [f for f in self.files if f.problem]

    def as_records(self) -> list[dict]:
        return [asdict(f) for f in self.files]

    def text(self) -> str:
        readable = [f for f in self.files if f.sample_rate is not None]
        lines = [f"files: {len(self.files)} ({len(readable)} readable, {len(self.problems)} unreadable)"]
        if readable:
            rates = Counter(f.sample_rate for f in readable)
            seconds = np.array([f.seconds for f in readable])
            channels = Counter(f.channels for f in readable)
            energy = np.array([f.band_energy_fraction for f in readable])
            lines += [
                "sample rates: " + ", ".join(f"{r / 1000:g} kHz x{n}" for r, n in sorted(rates.items())),
                f"durations: min {seconds.min():.2f} s, median {np.median(seconds):.2f} s, "
                f"max {seconds.max():.2f} s, total {seconds.sum():.1f} s",
                "channels: " + ", ".join(f"{c} x{n}" for c, n in sorted(channels.items())),
                f"bat band {DEFAULT_BAT_BAND_HZ[0] / 1000:g}-{DEFAULT_BAT_BAND_HZ[1] / 1000:g} kHz: "
                f"fully under Nyquist in {sum(f.band_covered_fraction >= 1 for f in readable)}/{len(readable)} files, "
                f"median share of energy in band {np.median(energy):.2f}",
            ]
        noted = [f for f in self.files if f.notes]
        lines.append(f"notes: {len(noted)}")
        lines += [f"  {f.file_name}: {f.notes}" for f in noted]
        lines.append(f"problems (unusable files): {len(self.problems)}")
        lines += [f"  {f.file_name}: {f.problem}" for f in self.problems]
        return "\n".join(lines)


def check_dataset(dataset: Dataset, num_workers: int = 0, show_progress: bool = True) -> DatasetReport:
    results = iter_prepared(list(dataset), check_file, num_workers)
    files = []
    for item, report, reason in progress(results, len(dataset), "check", show_progress):
        files.append(report if report is not None else FileReport(item.file_name, problem=reason))
    return DatasetReport(files)
