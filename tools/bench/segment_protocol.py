"""The call detector's synthetic protocol (issue 12), fixed before tuning: F1 per SNR at both criteria.

Scenes from bat_core.scenes (calls at SNR 0/6/12/20 dB over pink noise, clicks and an in-band insect
buzz; an echo belongs to its call's box), N scenes per SNR at each rate, a fixed seed. The detector
under test is any ``module:function`` with ``detect(samples, sample_rate) -> DataFrame`` of
``start_time_s, end_time_s`` rows; the band-energy anchor below is printed beside it as the floor a
detector must beat. Target: F1 >= 0.95 at >= 6 dB.

    python tools/bench/segment_protocol.py [--detector bat_core.segments:detect_calls] [--scenes 20] [--seconds 2]
    python tools/bench/segment_protocol.py --detector tools.bench.segment_protocol:batdetect2   # needs batdetect2
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bat_core.scenes import Scene, synth_scene
from bat_core.segments.scoring import score_detections

SNRS_DB = (0.0, 6.0, 12.0, 20.0)
SAMPLE_RATES = (384_000, 250_000)
Detector = Callable[[np.ndarray, int], pd.DataFrame]


def energy_anchor(samples: np.ndarray, sample_rate: int, band_hz: tuple[float, float] = (15e3, 120e3)) -> pd.DataFrame:
    """The issue's 30-line band-energy detector: 1 ms STFT, median floor per frequency bin, 20/10 dB hysteresis, 3 ms merge.

    A frame's level is its largest excess over the floor among the bat band's bins; a region starts
    where the level passes 20 dB and runs while it stays above 10 dB; regions closer than 3 ms merge.
    """
    window = max(16, int(round(sample_rate * 1e-3)))
    hop = window // 4
    samples = np.asarray(samples, dtype=np.float64)
    if len(samples) < window:
        return pd.DataFrame(columns=["start_time_s", "end_time_s"])
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop] * np.hanning(window)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(window, 1 / sample_rate)
    band = (freqs >= band_hz[0]) & (freqs <= min(band_hz[1], 0.95 * sample_rate / 2))
    level_db = 10 * np.log10(power[:, band] + 1e-20)
    excess = (level_db - np.median(level_db, axis=0)).max(axis=1)
    regions, start = [], None
    for index, value in enumerate(np.append(excess, -np.inf)):
        if start is None and value >= 10:
            start, seeded = index, False
        if start is not None:
            seeded |= value >= 20
            if value < 10:
                if seeded:
                    regions.append([start * hop, (index - 1) * hop + window])
                start = None
    merged: list[list[int]] = []
    for region in regions:
        if merged and region[0] - merged[-1][1] < 0.003 * sample_rate:
            merged[-1][1] = region[1]
        else:
            merged.append(region)
    return pd.DataFrame([(a / sample_rate, b / sample_rate) for a, b in merged], columns=["start_time_s", "end_time_s"])


def batdetect2(samples: np.ndarray, sample_rate: int) -> pd.DataFrame:
    """batdetect2 (bat-core[batdetect2] + its --no-deps step) through ``bat_core.segments.batdetect2.detect_file``, its
    own loading path: the scene is written to a temporary WAV first (outside the timing that matters: the run's
    seconds per second include it, a small share of batdetect2's)."""
    import tempfile

    import soundfile as sf

    from bat_core.segments.batdetect2 import COLUMNS, detect_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scene.wav"
        sf.write(path, samples, sample_rate, subtype="FLOAT")
        return pd.DataFrame(detect_file(str(path)), columns=list(COLUMNS))


def load_detector(spec: str) -> Detector:
    """``module:function``; this file's own functions resolve without importing it a second time."""
    module_name, _, function_name = spec.partition(":")
    if module_name in ("tools.bench.segment_protocol", "__main__") and function_name in globals():
        return globals()[function_name]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise SystemExit(f"cannot load detector {spec!r}: {error}") from error


def scenes(snr_db: float, count: int, seconds: float, seed: int) -> dict[str, Scene]:
    """File name -> scene; each scene's rng depends only on (seed, SNR, rate, index)."""
    return {f"scene_{rate // 1000}k_{index:03d}.wav": synth_scene(seconds, rate, snr_db, np.random.default_rng([seed, int(snr_db * 10), rate, index]),
                                                               name=f"scene_{rate // 1000}k_{index:03d}.wav")
            for rate in SAMPLE_RATES for index in range(count)}


def run(detector: Detector, batch: dict[str, Scene]) -> tuple[pd.DataFrame, float]:
    """All detections of a batch of scenes, with the detector's seconds per second of audio."""
    found, elapsed = [], 0.0
    for name, scene in batch.items():
        started = time.perf_counter()
        table = detector(scene.samples, scene.sample_rate)
        elapsed += time.perf_counter() - started
        found.append(pd.DataFrame({"File Name": name,
                                   "start_time_s": table["start_time_s"].to_numpy(float),
                                   "end_time_s": table["end_time_s"].to_numpy(float)}))
    audio_s = sum(len(scene.samples) / scene.sample_rate for scene in batch.values())
    return pd.concat(found, ignore_index=True), elapsed / audio_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="bat_core.segments:detect_calls", help="module:function (default: %(default)s)")
    parser.add_argument("--scenes", type=int, default=20, help="scenes per SNR and sample rate (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of a scene (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    detectors = {"anchor": energy_anchor}
    if args.detector.partition(":")[2] != "energy_anchor":
        detectors = {args.detector: load_detector(args.detector), **detectors}
    print(f"{args.scenes} scenes x {args.seconds:g} s per SNR at {', '.join(f'{r // 1000} kHz' for r in SAMPLE_RATES)}, "
          f"seed {args.seed}; F1 at onset<=10ms / IoU>=0.5; target F1 >= 0.95 at >= 6 dB")
    print(f"{'detector':<40} {'SNR dB':>6} {'calls':>6} {'F1 onset':>9} {'F1 IoU':>7} {'P onset':>8} {'R onset':>8} "
          f"{'covered':>8} {'kept':>6} {'s/s audio':>10}")
    for snr_db in SNRS_DB:
        batch = scenes(snr_db, args.scenes, args.seconds, args.seed)
        reference = pd.concat([scene.boxes for scene in batch.values()], ignore_index=True)
        durations = {name: len(scene.samples) / scene.sample_rate for name, scene in batch.items()}
        for label, detector in detectors.items():
            detections, speed = run(detector, batch)
            scores = score_detections(detections, reference, files=list(batch), durations=durations)
            print(f"{label:<40} {snr_db:>6g} {len(reference):>6} {scores.onset.f1:>9.3f} {scores.iou.f1:>7.3f} "
                  f"{scores.onset.precision:>8.3f} {scores.onset.recall:>8.3f} {scores.covered_share:>8.3f} "
                  f"{scores.kept_share:>6.3f} {speed:>10.4f}")


if __name__ == "__main__":
    main()
