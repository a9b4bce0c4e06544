import numpy as np
import pytest
import soundfile as sf

from bat_core.audio import ABSURD_AMPLITUDE, audio_info, load_audio, read_blocks
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


def test_absurd_float_values_fail_the_file(tmp_path):
    audio = np.zeros(25_000, dtype=np.float32)
    audio[1234] = 1e30  # finite, but no recording holds it
    sf.write(tmp_path / "absurd.wav", audio, 250_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="beyond"):
        load_audio(tmp_path / "absurd.wav")
    audio[1234] = 0.9 * ABSURD_AMPLITUDE  # loud float audio is still audio
    sf.write(tmp_path / "loud.wav", audio, 250_000, subtype="FLOAT")
    assert load_audio(tmp_path / "loud.wav").samples.max() == pytest.approx(900)


def test_blocks_are_bounded_and_join_to_the_whole_file(tmp_path):
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((300_001, 2))).astype(np.float32)
    sf.write(tmp_path / "long.wav", stereo, 384_000, subtype="FLOAT")
    blocks = list(read_blocks(tmp_path / "long.wav", block_frames=65_536))
    assert max(len(b) for b in blocks) == 65_536 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), stereo.mean(axis=1, dtype=np.float32))
    info = audio_info(tmp_path / "long.wav")
    assert (info.sample_rate, info.channels, info.frames) == (384_000, 2, 300_001)
