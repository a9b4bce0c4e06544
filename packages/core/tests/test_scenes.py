"""The detector protocol's scenes: the SNR asked is the SNR measured, and each box holds its call and echo."""

import numpy as np
import pytest
from scipy.signal import welch

from bat_core.scenes import synth_scene


def measured_snr_db(scene, box):
    """Call RMS over its own samples vs the pink noise's power in the call's band, from a Welch PSD (not the generator's FFT)."""
    rate = scene.sample_rate
    start, end = round(box.start_time_s * rate), round(box.call_end_time_s * rate)
    call_rms = np.sqrt(np.mean(scene.parts["calls"][start:end] ** 2))
    freqs, psd = welch(scene.parts["pink"], fs=rate, nperseg=8192)
    band = (freqs >= box.low_freq_hz) & (freqs <= box.high_freq_hz)
    noise_rms = np.sqrt(np.sum(psd[band]) * (freqs[1] - freqs[0]))
    return 20 * np.log10(call_rms / noise_rms)


@pytest.mark.parametrize(("sample_rate", "snr_db"), [(384_000, 0.0), (250_000, 6.0), (250_000, 20.0)])
def test_snr_is_what_was_asked(sample_rate, snr_db):
    scene = synth_scene(1.0, sample_rate, snr_db, np.random.default_rng(7))
    assert len(scene.boxes) >= 5 and set(scene.boxes.species) == {"FM", "CF-FM", "QCF"}
    for box in scene.boxes.itertuples():
        assert abs(measured_snr_db(scene, box) - snr_db) < 0.5, box
    assert scene.boxes.high_freq_hz.max() < 0.45 * sample_rate and scene.boxes.low_freq_hz.min() >= 15e3


def test_echo_lies_inside_its_call_box_and_nothing_of_a_call_outside():
    scene = synth_scene(1.0, 384_000, 12.0, np.random.default_rng(3), echo_probability=1.0)
    rate = scene.sample_rate
    foreground = scene.parts["calls"] + scene.parts["echoes"]
    inside = np.zeros(len(foreground), dtype=bool)
    for box in scene.boxes.itertuples():
        start, end = round(box.start_time_s * rate), round(box.end_time_s * rate)
        echo = round(box.echo_start_time_s * rate)
        assert start < echo < end and box.call_end_time_s <= box.end_time_s
        assert np.any(scene.parts["echoes"][echo:end] != 0) and not np.any(scene.parts["echoes"][end:end + rate // 100])
        inside[start:end] = True
    assert not np.any(foreground[~inside])
    assert np.all(scene.boxes.start_time_s.to_numpy()[1:] > scene.boxes.end_time_s.to_numpy()[:-1]), "boxes do not overlap"


def test_same_seed_same_scene_and_the_interferers_are_there():
    a = synth_scene(0.5, 250_000, 6.0, np.random.default_rng(11))
    b = synth_scene(0.5, 250_000, 6.0, np.random.default_rng(11))
    c = synth_scene(0.5, 250_000, 6.0, np.random.default_rng(12))
    assert a.samples.tobytes() == b.samples.tobytes() != c.samples.tobytes()
    assert a.boxes.equals(b.boxes)
    np.testing.assert_allclose(a.samples, sum(a.parts.values()), atol=1e-6)
    assert np.abs(a.parts["clicks"]).max() > 10 * 0.01 and np.count_nonzero(a.parts["buzz"]) > 0.9 * len(a.samples)
    buzz_spectrum = np.abs(np.fft.rfft(a.parts["buzz"]))
    peak_hz = np.fft.rfftfreq(len(a.samples), 1 / a.sample_rate)[np.argmax(buzz_spectrum)]
    assert 20e3 <= peak_hz <= 40e3
