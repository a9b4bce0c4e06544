import logging

import numpy as np
import pytest

from bat_core.time_expansion import SignalConverter, TimeExpansion, convert_for_model, discarded_energy_fraction


def tone(freq, rate, seconds=0.2):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)]


@pytest.mark.parametrize(
    "rate, target, factor",
    [(250_000, 16_000, 15), (500_000, 16_000, 15), (192_000, 16_000, 15), (250_000, 48_000, 5),
     (44_100, 48_000, 1), (16_000, 16_000, 1)],
)
def test_auto_factor_puts_the_bat_band_under_target_nyquist(rate, target, factor):
    expansion = TimeExpansion()
    assert expansion.factor_for(rate, target) == factor
    assert 120_000 / factor <= target / 2 or rate / 2 <= target / 2


def test_auto_factor_is_the_same_for_every_ultrasonic_rate():
    """The same call must land on the same model frequency whatever the recorder's rate."""
    expansion = TimeExpansion()
    assert len({expansion.factor_for(rate, 16_000) for rate in (192_000, 250_000, 384_000, 500_000)}) == 1


def test_parse():
    assert TimeExpansion.parse("auto").factor is None
    assert TimeExpansion.parse("10").factor == 10
    assert TimeExpansion.parse(1).factor == 1
    for bad in ("0.5", "ten", "-3"):
        with pytest.raises(ValueError):
            TimeExpansion.parse(bad)


def test_call_survives_time_expansion_and_maps_frequency():
    rate = 250_000
    call = tone(60_000, rate)
    out, conversion = convert_for_model(call, rate, 16_000, TimeExpansion.parse("10"))
    assert conversion.time_expansion == 10
    assert conversion.kept_up_to_hz == 80_000
    assert conversion.discarded_energy_fraction < 0.01 and not conversion.band_warning
    assert peak_hz(out, 16_000) == pytest.approx(6_000, abs=50)
    # 0.2 s of original audio becomes 2 s of model audio
    assert len(out) == pytest.approx(2.0 * 16_000, abs=2)
    assert conversion.seconds_per_model_second == pytest.approx(0.1)


def test_plain_resampling_loses_the_call_and_says_so(caplog, monkeypatch):
    monkeypatch.setattr("bat_core.time_expansion._band_losses_warned", set())
    rate = 250_000
    with caplog.at_level(logging.WARNING):
        out, conversion = convert_for_model(tone(60_000, rate), rate, 16_000, TimeExpansion.parse("1"))
    assert conversion.discarded_energy_fraction > 0.99 and conversion.band_warning
    assert "raise --time-expansion" in caplog.text
    assert np.sqrt(np.mean(out ** 2)) < 0.01  # the call is gone
    # once per rate: a second file at the same rate is flagged but not warned again; another rate is
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = convert_for_model(tone(60_000, rate), rate, 16_000, TimeExpansion.parse("1"))[1]
        other = convert_for_model(tone(60_000, 192_000), 192_000, 16_000, TimeExpansion.parse("1"))[1]
    assert again.band_warning and other.band_warning
    assert caplog.text.count("raise --time-expansion") == 1 and "192000 Hz" in caplog.text


def test_energy_fraction_of_two_tones():
    rate = 250_000
    mixed = tone(20_000, rate) + tone(100_000, rate)
    assert discarded_energy_fraction(mixed, rate, 50_000) == pytest.approx(0.5, abs=0.02)
    assert discarded_energy_fraction(mixed, rate, 125_000) == 0.0


@pytest.mark.parametrize("rate, target", [(384_000, 16_000), (250_000, 48_000), (192_000, 16_000), (500_000, 16_000)])
def test_streamed_conversion_equals_the_whole_array(rate, target):
    """Blocks through SignalConverter give exactly the samples of a one-shot conversion, the band check included."""
    rng = np.random.default_rng(0)
    signal = (tone(60_000, rate, 1.0) + 0.05 * rng.standard_normal(rate)).astype(np.float32)
    whole, conversion = convert_for_model(signal, rate, target, TimeExpansion())
    converter = SignalConverter(rate, target, TimeExpansion())
    streamed = [converter.push(signal[i:i + 65_536]) for i in range(0, len(signal), 65_536)] + [converter.finish()]
    np.testing.assert_array_equal(np.concatenate(streamed), whole)
    assert converter.conversion == conversion
    assert len(whole) == converter.expected_length(len(signal))


def test_resampling_keeps_duration_and_tone():
    out, conversion = convert_for_model(tone(4_000, 25_000, seconds=1.0), 25_000, 16_000, TimeExpansion.parse("1"))
    assert len(out) == 16_000 and conversion.time_expansion == 1
    assert peak_hz(out, 16_000) == pytest.approx(4_000, abs=2)


def band_energy(samples, rate, low, high):
    power = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return power[(freqs >= low) & (freqs < high)].sum() / power.sum()


@pytest.mark.parametrize("rate", [250_000, 384_000, 500_000])
def test_a_factor_above_auto_low_passes_at_the_band_top_for_every_rate(rate):
    """x30 at 16 kHz would pass up to 240 kHz, and each recording's Nyquist would decide where the model's band goes
    empty; above the band's top (120 kHz, model 4 kHz) nothing passes, whatever the rate, and it is recorded."""
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(rate // 2).astype(np.float32)
    out, conversion = convert_for_model(noise, rate, 16_000, TimeExpansion.parse("30"))
    assert conversion.kept_up_to_hz == 120_000
    assert band_energy(out, 16_000, 4_100, 8_000) < 1e-4  # nothing above 123 kHz of the recording
    assert band_energy(out, 16_000, 500, 3_500) > 0.72  # 15-105 kHz kept whole: 3/4 of a flat 0-4 kHz
    assert conversion.discarded_energy_fraction == pytest.approx(1 - 120_000 / (rate / 2), abs=0.03)
    assert len(out) == SignalConverter(rate, 16_000, TimeExpansion.parse("30")).expected_length(len(noise))


def test_a_raised_band_top_keeps_the_band_the_factor_passes(caplog, monkeypatch):
    monkeypatch.setattr("bat_core.time_expansion._band_losses_warned", set())
    rate = 500_000
    call = tone(200_000, rate)
    wide = TimeExpansion.parse("30", band_high_hz=240_000)
    out, conversion = convert_for_model(call, rate, 16_000, wide)
    assert conversion.kept_up_to_hz == 240_000 and not conversion.band_warning
    assert peak_hz(out, 16_000) == pytest.approx(200_000 / 30, abs=50)
    with caplog.at_level(logging.WARNING):
        cut, narrow = convert_for_model(call, rate, 16_000, TimeExpansion.parse("30"))
    assert narrow.band_warning and narrow.discarded_energy_fraction > 0.99
    assert "raise --band's HIGH_HZ" in caplog.text  # the factor passes it: the band's top cut it
    assert np.sqrt(np.mean(cut ** 2)) < 0.01  # a 200 kHz tone is above the default band: gone, and said


@pytest.mark.parametrize("rate, factor", [(384_000, "30"), (441_000, "25"), (500_000, "auto")])
def test_low_passed_stream_equals_the_whole_array(rate, factor):
    rng = np.random.default_rng(2)
    signal = (tone(60_000, rate, 1.0) + 0.05 * rng.standard_normal(rate)).astype(np.float32)
    expansion = TimeExpansion.parse(factor)
    whole, conversion = convert_for_model(signal, rate, 16_000, expansion)
    converter = SignalConverter(rate, 16_000, expansion)
    streamed = [converter.push(signal[i:i + 40_000]) for i in range(0, len(signal), 40_000)] + [converter.finish()]
    np.testing.assert_array_equal(np.concatenate(streamed), whole)
    assert converter.conversion == conversion
    assert len(whole) == converter.expected_length(len(signal))
    assert peak_hz(whole, 16_000) == pytest.approx(60_000 / conversion.time_expansion, abs=50)


def test_auto_factor_does_not_low_pass_again():
    """Under auto at 16 kHz (x15) and for mels at 48 kHz (x5) the factor already stops at 120 kHz: one resampling."""
    for target in (16_000, 48_000):
        assert SignalConverter(384_000, target, TimeExpansion()).band_rate is None
    assert SignalConverter(192_000, 16_000, TimeExpansion.parse("30")).band_rate is None  # its Nyquist is lower


def test_auto_cuts_where_its_factor_overshoots_another_band_top():
    """--band 15000 100000 under auto at 16 kHz is x13, which passes 104 kHz: the top is cut there too."""
    converter = SignalConverter(384_000, 16_000, TimeExpansion(band_high_hz=100_000))
    assert converter.factor == 13 and converter.kept_up_to_hz == 100_000 and converter.band_rate is not None


@pytest.mark.parametrize("rate, factor", [(256_000, "30"), (256_000, "auto"), (441_000, "25"), (312_500, "7.5")])
def test_expected_length_is_exact_at_any_length(rate, factor):
    """Lengths that land on half a sample included (soxr rounds them up, at each pass)."""
    rng = np.random.default_rng(3)
    for frames in [0, 1, 7, 56, 504, 1064, 12_345]:
        converter = SignalConverter(rate, 16_000, TimeExpansion.parse(factor))
        out = np.concatenate([converter.push(rng.standard_normal(frames).astype(np.float32)), converter.finish()])
        assert len(out) == converter.expected_length(frames), frames
