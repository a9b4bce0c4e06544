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
from pathlib import Path

import numpy as np
import soundfile as sf

from bat_core.errors import DatasetError

CALL_TYPES = ("FM", "CF-FM", "QCF")
SAMPLE_RATES = (192_000, 250_000, 256_000, 384_000)
SITES = ("site_a", "site_b", "site_c", "site_d")


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


def synth_call(call_type: str, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One call with its second harmonic (kept below 95% of Nyquist) and a Hann envelope."""
    track = _frequency_track(call_type, sample_rate, rng)
    call = _sweep(track, sample_rate)
    if 2 * track.max() < 0.95 * sample_rate / 2:
        call = call + rng.uniform(0.1, 0.3) * _sweep(2 * track, sample_rate)
    return (call * np.hanning(len(call))).astype(np.float32)


def synth_recording(call_type: str, sample_rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise and silence with a train of calls, each followed by a fainter echo."""
    n = int(sample_rate * seconds)
    audio = rng.normal(0, rng.uniform(0.001, 0.005), n).astype(np.float32)
    interval = {"FM": 0.08, "CF-FM": 0.09, "QCF": 0.1}[call_type]
    position = rng.uniform(0.02, 0.06)
    while position < seconds - 0.06:
        call = rng.uniform(0.15, 0.5) * synth_call(call_type, sample_rate, rng)
        start = int(position * sample_rate)
        audio[start:start + len(call)] += call[: n - start]
        echo_start = start + int(rng.uniform(0.002, 0.008) * sample_rate)
        if echo_start < n:
            audio[echo_start:echo_start + len(call)] += rng.uniform(0.15, 0.35) * call[: n - echo_start]
        position += interval * rng.uniform(0.7, 1.5)
    return np.clip(audio, -1, 1)


def _write_if_changed(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write a WAV unless the same bytes are there: rewriting the corpus keeps its files' fingerprints, so
    outputs made from it stay valid (a rerun of the demo recomputes nothing)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, subtype="PCM_16", format="WAV")
    data = buffer.getvalue()
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)


def write_demo_corpus(root: str | Path, n_files: int = 24, seed: int = 0, overwrite: bool = False) -> Path:
    """Write ``ROOT/data/audio/*.wav`` and ``ROOT/data/annotations.csv``; same seed, same bytes.

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
    rows = []
    for index in range(n_files):
        rng = np.random.default_rng([seed, index])
        call_type = CALL_TYPES[index % len(CALL_TYPES)]
        sample_rate = SAMPLE_RATES[(index // len(CALL_TYPES)) % len(SAMPLE_RATES)]
        seconds = round(float(rng.uniform(0.3, 1.0)), 3)
        site = SITES[index % len(SITES)]
        name = f"demo_{index:03d}_{call_type.replace('-', '').lower()}_{sample_rate // 1000}k.wav"
        _write_if_changed(audio_dir / name, synth_recording(call_type, sample_rate, seconds, rng), sample_rate)
        rows.append({"File Name": name, "call_type": call_type, "site": site,
                     "sample_rate": sample_rate, "duration_s": seconds})
    with open(root / "data" / "annotations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root
