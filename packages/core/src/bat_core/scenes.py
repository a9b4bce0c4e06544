"""Synthetic scenes for the call-detector protocol: calls at a chosen SNR among the sounds that fool detectors.

A scene is pink noise with broadband clicks (rain, twigs, electronics), an insect buzz in the bat
band (a continuous amplitude-modulated tone at 20-40 kHz), and FM / CF-FM / QCF calls of 1-20 ms
between 15 and 120 kHz (kept below 90% of Nyquist), some followed by an attenuated echo. The true
boxes come back in the layout of ``shared/bats/calls.csv``; an echo belongs to its call, so the box
runs to the echo's end (an echo detected alone is a false positive).

SNR, precisely: ``20 log10(call_rms / noise_rms)``, where ``call_rms`` is the RMS of the call alone
(no echo, no noise) over its own samples, and ``noise_rms`` is the RMS of the pink noise alone after
an ideal band-pass to the call's ``[low_freq_hz, high_freq_hz]``, over the whole scene. Clicks and the
buzz are interferers on top of that noise, not part of it: they test what a detector rejects, while
the SNR stays a property of the call and the stationary background.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bat_core.demo import CALLS_COLUMNS

SCENE_CALL_TYPES = ("FM", "CF-FM", "QCF")
LABEL_ORIGIN = "synthetic (bat_core.scenes)"
NOISE_RMS = 0.01  # broadband pink noise; calls and interferers are scaled against it


@dataclass(frozen=True, eq=False)
class Scene:
    samples: np.ndarray  # float32, the sum of the parts
    sample_rate: int
    boxes: pd.DataFrame  # calls.csv columns + call_end_time_s, echo_start_time_s (nan without echo), snr_db
    parts: dict[str, np.ndarray] = field(default_factory=dict)  # calls, echoes, pink, clicks, buzz (float64)


def pink_noise(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as 1/f (flat below 1 kHz), scaled to ``NOISE_RMS``."""
    spectrum = np.fft.rfft(rng.normal(0, 1, n))
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    spectrum /= np.sqrt(np.maximum(freqs, 1000.0))
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, n)
    return noise * NOISE_RMS / np.sqrt(np.mean(noise**2))


def _call_track(call_type: str, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Instantaneous frequency (Hz per sample) of one call: 1-20 ms, 15-120 kHz, below 90% of Nyquist."""
    top = min(120e3, 0.45 * sample_rate)

    def samples(ms: float) -> int:
        return max(8, int(sample_rate * ms / 1000))

    if call_type == "FM":
        start, end = rng.uniform(0.75, 1.0) * top, rng.uniform(15e3, 35e3)
        return start * (end / start) ** np.linspace(0, 1, samples(rng.uniform(1, 5)))
    if call_type == "CF-FM":
        cf = rng.uniform(0.55, 0.85) * top
        constant = np.full(samples(rng.uniform(8, 18)), cf)
        return np.concatenate([constant, np.linspace(cf, cf - rng.uniform(8e3, 16e3), samples(2))])
    if call_type == "QCF":
        start = rng.uniform(40e3, 60e3)
        return np.linspace(start, start - rng.uniform(5e3, 12e3), samples(rng.uniform(4, 12)))
    raise ValueError(f"unknown call type {call_type!r}; known: {SCENE_CALL_TYPES}")


def _envelope(n: int) -> np.ndarray:
    """Fast rise and fall (a Tukey window, 10% ramps): bat calls start abruptly, so the box's start is the call's."""
    ramp = max(1, n // 10)
    envelope = np.ones(n)
    rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    envelope[:ramp], envelope[n - ramp:] = rise, rise[::-1]
    return envelope


def _clicks(n: int, sample_rate: int, rng: np.random.Generator, per_second: float) -> np.ndarray:
    """Broadband impulses: 0.05-0.3 ms decaying noise bursts, peaks 10-50x the noise RMS."""
    clicks = np.zeros(n)
    for _ in range(rng.poisson(per_second * n / sample_rate)):
        length = max(4, int(sample_rate * rng.uniform(0.05e-3, 0.3e-3)))
        start = int(rng.integers(0, max(1, n - length)))
        burst = rng.normal(0, 1, length) * np.exp(-np.arange(length) / (length / 4))
        clicks[start:start + length] += NOISE_RMS * rng.uniform(10, 50) * burst / np.max(np.abs(burst))
    return clicks


def _buzz(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """An insect's stridulation: a 20-40 kHz carrier, amplitude-modulated at 30-120 Hz, the whole scene long."""
    t = np.arange(n) / sample_rate
    carrier = np.sin(2 * np.pi * rng.uniform(20e3, 40e3) * t + rng.uniform(0, 2 * np.pi))
    depth = rng.uniform(0.3, 0.8)
    modulation = 1 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(30, 120) * t))
    return NOISE_RMS * rng.uniform(1, 3) * carrier * modulation


def synth_scene(seconds: float, sample_rate: int, snr_db: float, rng: np.random.Generator, *, name: str = "scene.wav",
                echo_probability: float = 0.5, clicks_per_second: float = 5.0, buzz: bool = True) -> Scene:
    """One scene with its true boxes; every call at ``snr_db`` (see the module's definition). Same rng state, same scene.

    Calls are 20-120 ms apart (box end to next start); an echo arrives 2-8 ms after its call starts,
    10-20 dB weaker, and may overlap a long call as it does in the field.
    """
    n = int(round(seconds * sample_rate))
    pink = pink_noise(n, sample_rate, rng)
    spectrum_power = np.abs(np.fft.rfft(pink)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    cumulative = np.concatenate([[0.0], np.cumsum(spectrum_power)])
    calls, echoes = np.zeros(n), np.zeros(n)
    rows = []
    position = rng.uniform(0.005, 0.05)
    while True:
        call_type = SCENE_CALL_TYPES[int(rng.integers(len(SCENE_CALL_TYPES)))]
        track = _call_track(call_type, sample_rate, rng)
        start = int(position * sample_rate)
        echo = rng.random() < echo_probability
        echo_delay = int(rng.uniform(0.002, 0.008) * sample_rate)
        echo_gain = 10 ** (-rng.uniform(10, 20) / 20)
        end = start + (echo_delay if echo else 0) + len(track)
        if end > n - int(0.005 * sample_rate):
            break
        f_low, f_high = float(track.min()), float(track.max())
        band = (freqs >= f_low) & (freqs <= f_high) & (freqs > 0) & (freqs < sample_rate / 2)
        first, last = np.flatnonzero(band)[[0, -1]]
        noise_in_band = np.sqrt(2 * (cumulative[last + 1] - cumulative[first])) / n
        call = np.sin(2 * np.pi * np.cumsum(track) / sample_rate) * _envelope(len(track))
        call *= noise_in_band * 10 ** (snr_db / 20) / np.sqrt(np.mean(call**2))
        calls[start:start + len(call)] += call
        if echo:
            echoes[start + echo_delay:start + echo_delay + len(call)] += echo_gain * call
        rows.append({"File Name": name, "call_index": len(rows), "start_time_s": start / sample_rate,
                     "end_time_s": end / sample_rate, "low_freq_hz": f_low, "high_freq_hz": f_high,
                     "species": call_type, "event": "Echolocation", "flags": "", "label_origin": LABEL_ORIGIN,
                     "det_prob": np.nan, "class_prob": np.nan, "annotator_notes": "",
                     "call_end_time_s": (start + len(call)) / sample_rate,
                     "echo_start_time_s": (start + echo_delay) / sample_rate if echo else np.nan, "snr_db": float(snr_db)})
        position = end / sample_rate + rng.uniform(0.02, 0.12)
    parts = {"calls": calls, "echoes": echoes, "pink": pink,
             "clicks": _clicks(n, sample_rate, rng, clicks_per_second),
             "buzz": _buzz(n, sample_rate, rng) if buzz else np.zeros(n)}
    samples = sum(parts.values()).astype(np.float32)
    columns = [*CALLS_COLUMNS, "call_end_time_s", "echo_start_time_s", "snr_db"]
    return Scene(samples, sample_rate, pd.DataFrame(rows, columns=columns), parts)
