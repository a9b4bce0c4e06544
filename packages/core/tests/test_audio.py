import numpy as np
import pytest
import soundfile as sf

from bat_core.audio import load_audio, resample
from bat_core.errors import AudioError


def tone(freq, rate, seconds=0.05, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [192_000, 250_000, 312_500, 500_000])
def test_reads_ultrasonic_rates(tmp_path, rate):
    path = tmp_path / "a.wav"
    sf.write(path, tone(40_000, rate), rate, subtype="PCM_16")
    recording = load_audio(path)
    assert recording.sample_rate == rate
    assert recording.samples.dtype == np.float32 and recording.samples.ndim == 1
    assert recording.seconds == pytest.approx(0.05, abs=1e-5)


def test_flac_and_stereo_mixed_to_mono(tmp_path):
    left = tone(30_000, 192_000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    sf.write(tmp_path / "s.flac", stereo, 192_000)
    recording = load_audio(tmp_path / "s.flac")
    assert recording.channels == 2
    np.testing.assert_allclose(recording.samples, left / 2, atol=1e-4)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"RIFF1234WAVEjunk" * 4), "cannot decode"),
        (lambda p: sf.write(p, np.full(64, np.nan, np.float32), 250_000, subtype="FLOAT"), "NaN"),
        (lambda p: sf.write(p, np.array([0.0, np.inf], np.float32), 250_000, subtype="FLOAT"), "NaN/inf"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 250_000), "no audio samples"),
        (lambda p: None, "not found"),
    ],
)
def test_bad_files_raise_audio_error_with_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason):
        load_audio(path)


def test_resample_keeps_duration_and_tone():
    signal = tone(4_000, 25_000, seconds=1.0)
    out = resample(signal, 25_000, 16_000)
    assert len(out) == 16_000
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == pytest.approx(4_000, abs=2)  # 1 Hz bins over 1 s
    assert resample(signal, 25_000, 25_000) is not None
    with pytest.raises(AudioError):
        resample(signal, 0, 16_000)
