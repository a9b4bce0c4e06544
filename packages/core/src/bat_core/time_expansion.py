"""Getting ultrasonic calls to a model without losing them.

A file recorded at ``sr`` and read with time-expansion factor ``k`` is treated as
audio at ``sr / k``: a 250 kHz recording read with k=10 is 25 kHz audio, ten times
slower, and a 60 kHz call becomes a 6 kHz tone. Only then is it resampled to the
model's rate. Plain resampling (k=1) of a 250 kHz file to 16 kHz keeps nothing
above 8 kHz, that is, no bat call at all.

``auto`` picks ``k`` from the target rate and the bat band alone (not per file),
so the same call lands on the same model frequency in every recording of a corpus;
recordings whose own Nyquist already fits under the target's are not expanded.

The band's top is also where the model's input stops. A factor larger than auto's
(finer frames) would let through frequencies up to the target Nyquist times the factor,
and a recording's own Nyquist then decides where its model band goes empty: in a corpus
of mixed sample rates every frame, silence included, tells the rate apart, and an encoder
learns the recorder instead of the call (bat-hubert at x30 on the demo corpus: BENCHMARKS.md).
So what lies above the band's top is low-passed away (soxr's anti-aliasing filter, by
resampling through the rate that holds exactly the band), and recordings that reach it all
give the model the same band. Pass a higher top (``--band 15000 240000``) to keep more.
With the default band, auto's factors for 16 and 48 kHz stop exactly at 120 kHz and need no
cut; where auto's factor overshoots the top (another band, a 22.05 or 44.1 kHz target) the
cut applies under auto too.
The band check measures, on the original signal, the share of spectral energy
above the highest original frequency the conversion keeps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from bat_core.spectrum import SpectrumAccumulator, band_share

log = logging.getLogger(__name__)

DEFAULT_BAT_BAND_HZ = (15_000.0, 120_000.0)
DEFAULT_WARN_FRACTION = 0.05
MAX_FACTOR = 1000.0  # 500 kHz read 1000x slower is 500 Hz audio: nothing sensible lies beyond


@dataclass(frozen=True)
class TimeExpansion:
    """How recordings are brought to a model's rate. ``factor=None`` means auto; the band's top is where the model's
    input stops (low-passed there when the factor would let more through)."""

    factor: float | None = None
    band_low_hz: float = DEFAULT_BAT_BAND_HZ[0]
    band_high_hz: float = DEFAULT_BAT_BAND_HZ[1]
    warn_fraction: float = DEFAULT_WARN_FRACTION

    @classmethod
    def parse(cls, text: str | float | int | None, **kwargs) -> TimeExpansion:
        """``"auto"``/None, or a factor >= 1 (``"10"``; ``"1"`` is plain resampling)."""
        if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
            return cls(factor=None, **kwargs)
        try:
            factor = float(text)
        except ValueError as error:
            raise ValueError(f"time expansion must be 'auto' or a number >= 1, got {text!r}") from error
        if not 1 <= factor <= MAX_FACTOR:
            raise ValueError(f"time expansion must be a number from 1 to {MAX_FACTOR:g}, got {factor}")
        return cls(factor=factor, **kwargs)

    def factor_for(self, sample_rate: float, target_rate: float) -> float:
        """The factor used for one recording at ``sample_rate`` going to ``target_rate``."""
        if self.factor is not None:
            return self.factor
        target_nyquist = target_rate / 2
        if sample_rate / 2 <= target_nyquist:
            return 1.0
        return float(max(1, math.ceil(self.band_high_hz / target_nyquist)))

    def describe(self) -> str:
        return "auto" if self.factor is None else f"{self.factor:g}"


@dataclass(frozen=True)
class SignalConversion:
    """What was done to one recording's signal; stored with every output."""

    original_sample_rate: int
    time_expansion: float
    target_sample_rate: int
    kept_up_to_hz: float  # highest original frequency that survives
    discarded_energy_fraction: float
    band_warning: bool

    @property
    def seconds_per_model_second(self) -> float:
        """Original seconds per second of model audio (1/k): maps frames to real time."""
        return 1.0 / self.time_expansion

    def as_record(self) -> dict:
        return asdict(self)


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def discarded_energy_fraction(samples: np.ndarray, sample_rate: float, cutoff_hz: float) -> float:
    """Share of the signal's spectral energy above ``cutoff_hz``."""
    if cutoff_hz >= sample_rate / 2 or len(samples) < 16:
        return 0.0
    return band_share(samples, sample_rate, np.nextafter(cutoff_hz, np.inf), sample_rate)


_band_losses_warned: set[tuple[int, float, int]] = set()


def warn_band_loss(conversion: SignalConversion) -> None:
    """Warn about a conversion that lost part of the spectrum, once per (recording rate, factor, model rate)
    in this process, so 10,000 files give one line each kind, not 10,000; every file's loss is in its
    manifest row and the run summary. Called where results are gathered (the runner's process), not in
    the decoding workers, which would each say it again."""
    if conversion.band_warning:
        _warn_band_loss(conversion.discarded_energy_fraction, conversion.kept_up_to_hz, conversion.time_expansion,
                        conversion.target_sample_rate, conversion.original_sample_rate)


def _warn_band_loss(discarded: float, kept_up_to_hz: float, factor: float, target_rate: int, sample_rate: int) -> None:
    key = (int(sample_rate), float(factor), int(target_rate))
    level = logging.DEBUG if key in _band_losses_warned else logging.WARNING
    _band_losses_warned.add(key)
    log.log(
        level,
        "%.0f%% of the spectral energy lies above %.0f Hz and is discarded by time expansion %g at %d Hz "
        "(recording at %d Hz); %s to keep it (warned once per rate; each file is counted "
        "in the run summary and flagged in the manifest column band_warning)",
        100 * discarded, kept_up_to_hz, factor, target_rate, sample_rate,
        "raise --band's HIGH_HZ" if kept_up_to_hz < target_rate / 2 * factor else "raise --time-expansion",
    )


class SignalConverter:
    """Time expansion and resampling of one recording, block by block.

    ``push`` takes the next block of the original signal and returns the converted samples
    it completes; ``finish`` flushes the resampler; ``conversion`` then says what was done,
    band check included (measured on the original signal as it streamed past). soxr's stream
    gives the same samples as a one-shot resample of the whole recording.
    ``target_rate=None`` passes the recording through at its own rate.
    """

    def __init__(self, sample_rate: int, target_rate: int | None, expansion: TimeExpansion = TimeExpansion()):
        import soxr

        self.sample_rate = int(sample_rate)
        self.target_rate = int(target_rate) if target_rate is not None else self.sample_rate
        self.expansion = expansion
        self.factor = expansion.factor_for(self.sample_rate, self.target_rate) if target_rate is not None else 1.0
        self.expanded_rate = self.sample_rate / self.factor
        passes = min(self.sample_rate / 2, self.target_rate / 2 * self.factor)
        self.kept_up_to_hz = passes if target_rate is None else min(passes, expansion.band_high_hz)
        # the rate (of the expanded audio) that holds exactly the kept band: resampling through it low-passes
        self.band_rate = 2 * self.kept_up_to_hz / self.factor if self.kept_up_to_hz < passes else None
        self._low_pass = (None if self.band_rate is None else
                          soxr.ResampleStream(self.expanded_rate, self.band_rate, 1, dtype="float32", quality="HQ"))
        source_rate = self.band_rate or self.expanded_rate
        self._resampler = (None if source_rate == self.target_rate else
                           soxr.ResampleStream(source_rate, self.target_rate, 1, dtype="float32", quality="HQ"))
        self._measure = self.kept_up_to_hz < self.sample_rate / 2
        self._spectrum = SpectrumAccumulator(self.sample_rate)
        self.samples_in = 0
        self.samples_out = 0
        self._conversion: SignalConversion | None = None

    def expected_length(self, frames: int) -> int:
        """Converted samples a recording of ``frames`` samples gives (soxr rounds half up, at each pass)."""
        expanded = Fraction(self.sample_rate) / Fraction(self.factor)  # exact: a float ratio misses the halves
        if self.band_rate is not None:
            band = 2 * Fraction(self.kept_up_to_hz) / Fraction(self.factor)
            frames = _round_half_up(frames * band / expanded)
            return _round_half_up(frames * self.target_rate / band)
        return _round_half_up(frames * self.target_rate / expanded)

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        self.samples_in += len(block)
        if self._measure:
            self._spectrum.push(block)
        if self._low_pass is not None:
            block = self._low_pass.resample_chunk(block, last=False)
        out = block if self._resampler is None else self._resampler.resample_chunk(block, last=False)
        self.samples_out += len(out)
        return out

    def finish(self) -> np.ndarray:
        tail = np.zeros(0, dtype=np.float32)
        if self._low_pass is not None:
            tail = self._low_pass.resample_chunk(tail, last=True)
        out = tail if self._resampler is None else self._resampler.resample_chunk(tail, last=True)
        self.samples_out += len(out)
        discarded = 0.0
        if self._measure and self.samples_in >= 16:
            discarded = self._spectrum.band_share(np.nextafter(self.kept_up_to_hz, np.inf), self.sample_rate)
        warning = discarded > self.expansion.warn_fraction
        self._conversion = SignalConversion(
            original_sample_rate=self.sample_rate, time_expansion=float(self.factor),
            target_sample_rate=self.target_rate, kept_up_to_hz=float(self.kept_up_to_hz),
            discarded_energy_fraction=float(discarded), band_warning=bool(warning),
        )
        return out

    def stream(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The converted stream of a recording's blocks (empty pieces left out), flushed at the end."""
        for block in blocks:
            out = self.push(block)
            if len(out):
                yield out
        tail = self.finish()
        if len(tail):
            yield tail

    @property
    def conversion(self) -> SignalConversion:
        if self._conversion is None:
            raise RuntimeError("finish() the stream before asking what was done to it")
        return self._conversion


def convert_for_model(
    samples: np.ndarray,
    sample_rate: int,
    target_rate: int,
    expansion: TimeExpansion,
) -> tuple[np.ndarray, SignalConversion]:
    """Time-expand then resample a whole array to ``target_rate``; report what the conversion discards."""
    converter = SignalConverter(sample_rate, target_rate, expansion)
    converted = np.concatenate([converter.push(samples), converter.finish()])
    warn_band_loss(converter.conversion)
    return converted, converter.conversion
