"""A deterministic synthetic corpus of bat-like calls: README's default input and test data.

Three call types shaped like real echolocation (fundamental frequencies in Hz):
- ``FM``: steep downward sweep 90-110 kHz -> 25-35 kHz in 2-5 ms (Myotis-like)
- ``CF-FM``: constant 78-86 kHz for 20-40 ms ending in a short FM drop (Rhinolophus-like)
- ``QCF``: shallow sweep 50-56 kHz -> 42-46 kHz in 5-9 ms (Pipistrellus-like)
Each call has a weaker second harmonic (where the rate allows), an echo, and sits
in low noise and silence; files come at 192-384 kHz and last 0.3-1.0 s.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bat_core.errors import DatasetError

CALL_TYPES = ("FM", "CF-FM", "QCF")
SAMPLE_RATES = (192_000, 250_000, 256_000, 384_000)
SITES = ("site_a", "site_b", "site_c", "site_d")
CALLS_COLUMNS = ("File Name", "call_index", "start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz", "species", "event",
                 "flags", "label_origin", "det_prob", "class_prob", "annotator_notes")
LABEL_ORIGIN = "synthetic (bat_core.demo)"


def _sweep(freqs: np.ndarray, sample_rate: int) -> np.ndarray:
    """A tone following the instantaneous frequency track ``freqs`` (Hz per sample)."""
    return np.sin(2 * np.pi * np.cumsum(freqs) / sample_rate)


def _frequency_track(call_type: str, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    def samples(ms: float) -> int:
        return max(8, int(sample_rate * ms / 1000))

    if call_type == "FM":
        start, end = rng.uniform(90e3, 110e3), rng.uniform(25e3, 35e3)
        n = samples(rng.uniform(2, 5))
        return start * (end / start) ** np.linspace(0, 1, n)  # exponential sweep
    if call_type == "CF-FM":
        cf = rng.uniform(78e3, 86e3)
        constant = np.full(samples(rng.uniform(20, 40)), cf)
        drop = np.linspace(cf, cf - rng.uniform(12e3, 18e3), samples(2))
        return np.concatenate([constant, drop])
    if call_type == "QCF":
        start, end = rng.uniform(50e3, 56e3), rng.uniform(42e3, 46e3)
        return np.linspace(start, end, samples(rng.uniform(5, 9)))
    raise ValueError(f"unknown call type {call_type!r}; known: {CALL_TYPES}")


def _call_and_band(call_type: str, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """A call and the band its energy spans (second harmonic included when present): the true box's frequencies."""
    track = _frequency_track(call_type, sample_rate, rng)
    call = _sweep(track, sample_rate)
    f_high = float(track.max())
    if 2 * track.max() < 0.95 * sample_rate / 2:
        call = call + rng.uniform(0.1, 0.3) * _sweep(2 * track, sample_rate)
        f_high = float(2 * track.max())
    return (call * np.hanning(len(call))).astype(np.float32), float(track.min()), f_high


def synth_call(call_type: str, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One call with its second harmonic (kept below 95% of Nyquist) and a Hann envelope."""
    return _call_and_band(call_type, sample_rate, rng)[0]


@dataclass(frozen=True)
class PlacedCall:
    """Where ``synth_recording`` put one call, in samples of the recording: the known answer for detectors."""

    start: int
    length: int  # the call alone, clipped at the end of the recording
    echo_start: int
    echo_length: int  # 0 when the echo falls past the end
    f_low: float
    f_high: float

    @property
    def end(self) -> int:
        """End of the call's box: an echo belongs to its call, so the box covers it."""
        return max(self.start + self.length, self.echo_start + self.echo_length)


def synth_recording_with_calls(call_type: str, sample_rate: int, seconds: float,
                               rng: np.random.Generator) -> tuple[np.ndarray, list[PlacedCall]]:
    """``synth_recording`` and where it placed each call (same rng draws in the same order, so the same audio)."""
    n = int(sample_rate * seconds)
    audio = rng.normal(0, rng.uniform(0.001, 0.005), n).astype(np.float32)
    interval = {"FM": 0.08, "CF-FM": 0.09, "QCF": 0.1}[call_type]
    position = rng.uniform(0.02, 0.06)
    placed = []
    while position < seconds - 0.06:
        amplitude = rng.uniform(0.15, 0.5)
        call, f_low, f_high = _call_and_band(call_type, sample_rate, rng)
        call = amplitude * call
        start = int(position * sample_rate)
        audio[start:start + len(call)] += call[: n - start]
        echo_start = start + int(rng.uniform(0.002, 0.008) * sample_rate)
        if echo_start < n:
            audio[echo_start:echo_start + len(call)] += rng.uniform(0.15, 0.35) * call[: n - echo_start]
        placed.append(PlacedCall(start, min(len(call), n - start), echo_start, max(0, min(len(call), n - echo_start)), f_low, f_high))
        position += interval * rng.uniform(0.7, 1.5)
    return np.clip(audio, -1, 1), placed


def synth_recording(call_type: str, sample_rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise and silence with a train of calls, each followed by a fainter echo."""
    return synth_recording_with_calls(call_type, sample_rate, seconds, rng)[0]


def _call_rows(name: str, call_type: str, sample_rate: int, placed: list[PlacedCall]) -> list[dict]:
    """Rows of ``calls.csv`` (the layout of batdetect2's boxes in shared/bats) for one recording."""
    return [{"File Name": name, "call_index": index, "start_time_s": f"{call.start / sample_rate:.7f}",
             "end_time_s": f"{call.end / sample_rate:.7f}", "low_freq_hz": round(call.f_low), "high_freq_hz": round(call.f_high),
             "species": call_type, "event": "Echolocation",
             "flags": f"echo_start_s={call.echo_start / sample_rate:.7f}" if call.echo_length else "",
             "label_origin": LABEL_ORIGIN, "det_prob": "", "class_prob": "", "annotator_notes": ""}
            for index, call in enumerate(placed)]


def _write_if_changed(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write a WAV unless the same bytes are there: rewriting the corpus keeps its files' fingerprints, so
    outputs made from it stay valid (a rerun of the demo recomputes nothing)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, subtype="PCM_16", format="WAV")
    data = buffer.getvalue()
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)


def write_demo_corpus(root: str | Path, n_files: int = 24, seed: int = 0, overwrite: bool = False) -> Path:
    """Write ``ROOT/data/audio/*.wav``, ``ROOT/data/annotations.csv`` and ``ROOT/data/calls.csv``; same seed, same bytes.

    ``calls.csv`` holds each call's true box in the layout of shared/bats/calls.csv (seconds of the
    recording; species = the call type), so detectors are scored against known answers. A box runs
    from the call's first sample to the end of its echo, the later of the two: an echo belongs to its call.

    Labels: ``call_type`` (FM, CF-FM, QCF) and ``site`` (a recording group for
    grouped cross-validation). An existing annotations.csv is replaced only with ``overwrite``.
    """
    root = Path(root)
    csv_path = root / "data" / "annotations.csv"
    if csv_path.exists() and not overwrite:
        raise DatasetError(f"{csv_path} exists: a demo corpus would replace it; pass --overwrite to do so, or choose "
                           "another ROOT")
    audio_dir = root / "data" / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    call_rows: list[dict] = []
    for index in range(n_files):
        rng = np.random.default_rng([seed, index])
        call_type = CALL_TYPES[index % len(CALL_TYPES)]
        sample_rate = SAMPLE_RATES[(index // len(CALL_TYPES)) % len(SAMPLE_RATES)]
        seconds = round(float(rng.uniform(0.3, 1.0)), 3)
        site = SITES[index % len(SITES)]
        name = f"demo_{index:03d}_{call_type.replace('-', '').lower()}_{sample_rate // 1000}k.wav"
        samples, placed = synth_recording_with_calls(call_type, sample_rate, seconds, rng)
        _write_if_changed(audio_dir / name, samples, sample_rate)
        call_rows.extend(_call_rows(name, call_type, sample_rate, placed))
        rows.append({"File Name": name, "call_type": call_type, "site": site,
                     "sample_rate": sample_rate, "duration_s": seconds})
    with open(root / "data" / "annotations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(root / "data" / "calls.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CALLS_COLUMNS))
        writer.writeheader()
        writer.writerows(call_rows)
    return root
