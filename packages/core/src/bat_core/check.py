"""A dataset report: what is in a project and what is wrong with it, before any model runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import numpy as np

from bat_core.audio import audio_info, read_blocks
from bat_core.dataset import Dataset, DatasetItem
from bat_core.runner import FileInfo, RunOptions, run
from bat_core.spectrum import SpectrumAccumulator
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


@dataclass(frozen=True)
class CheckPrepare:
    """Runner prepare: read a recording in blocks and measure it (no pieces, only its FileInfo)."""

    band: tuple[float, float] = DEFAULT_BAT_BAND_HZ
    piece_bytes: int = 1

    def __call__(self, item: DatasetItem) -> Iterator[FileInfo]:
        info = audio_info(item.path)
        spectrum = SpectrumAccumulator(info.sample_rate)
        samples, silent = 0, True
        for block in read_blocks(item.path):
            spectrum.push(block)
            samples += len(block)
            silent = silent and not np.any(block)
        yield FileInfo(seconds=samples / info.sample_rate, extra={
            "sample_rate": info.sample_rate, "channels": info.channels, "silent": silent,
            "band_energy_fraction": spectrum.band_share(*self.band)})


def file_report(file_name: str, info: FileInfo, band: tuple[float, float] = DEFAULT_BAT_BAND_HZ) -> FileReport:
    extra = info.extra
    low, high = band
    nyquist = extra["sample_rate"] / 2
    covered = max(0.0, min(nyquist, high) - low) / (high - low)
    notes = []
    if extra["channels"] > 1:
        notes.append(f"{extra['channels']} channels (mixed to mono)")
    if covered < 1:
        notes.append(f"Nyquist {nyquist / 1000:g} kHz covers {100 * covered:.0f}% of the bat band")
    if extra["silent"]:
        notes.append("digital silence")
    return FileReport(file_name, extra["sample_rate"], extra["channels"], info.seconds, covered,
                      extra["band_energy_fraction"], notes="; ".join(notes))


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


class _Reports:
    """Runner sink collecting one FileReport per file, in file order."""

    def __init__(self, dataset: Dataset):
        self.by_name: dict[str, FileReport] = {}

    def add(self, item, piece, output) -> None:
        raise RuntimeError("check makes no pieces")

    def done(self, item: DatasetItem, info: FileInfo) -> None:
        self.by_name[item.file_name] = file_report(item.file_name, info)

    def fail(self, item: DatasetItem, reason: str) -> None:
        self.by_name[item.file_name] = FileReport(item.file_name, problem=reason)


def check_dataset(dataset: Dataset, options: RunOptions = RunOptions()) -> DatasetReport:
    """Read every recording (streamed, in worker processes) and report on each."""
    reports = _Reports(dataset)
    run(list(dataset), CheckPrepare(), reports, options=replace(options, description=options.description or "check"))
    return DatasetReport([reports.by_name[item.file_name] for item in dataset])
