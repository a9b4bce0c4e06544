"""A dependency-free band-energy call detector, streamed block by block (numpy only).

The recording is read at its own rate (no resampling, no time expansion). Each frame of about
1 ms is Fourier-transformed; its power is summed over three neighbouring bins (a one-bin noise
peak then almost never crosses a threshold, while a call, which spans bins, keeps its energy)
and divided by a per-bin noise floor: the median over a few seconds, kept as a ring of
per-block medians so memory does not grow with the file. A bin's SNR competes with its least SNR
over the last ``integrate_frames`` frames times ``integrate_gain`` (a CF or QCF call holds its bins
for several frames, noise does not: the gain gives both statistics the same false-alarm rate on pink
noise), and a frame's score is its largest bin SNR within the band. A click is short (under ~0.5 ms)
and broadband; a bat call, however loud and short, is narrowband at each instant (an FM sweep or a
tone). So a frame whose energy sits in one eighth of it (``click_crest``) is a click only if that
eighth's spectrum is spread (its strongest three neighbouring in-band bins hold under ``click_share``
of its power); a click scores nothing. Loudness plays no part.
Hysteresis: a call holds at least one frame ``high_db`` over the floor and extends over neighbouring
frames above ``low_db``. Events apart by one quiet frame are one; events closer than ``merge_ms``
are one when the later is ``echo_db`` weaker than the call so far (an echo a few ms behind a call
belongs to its box, while the calls of a feeding buzz, ~5 ms apart and alike, stay apart); calls
shorter than ``min_ms`` (to the nearest frame) are dropped, longer than ``max_ms`` split; at most
``max_calls_per_second`` (the strongest) per second.

Calls crossing a block boundary are handled by carrying the per-frame features of the call
still open (bounded by ``max_ms``) into the next block.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

DETECTOR_NAME = "band_energy"
DETECTOR_VERSION = 3  # 3: clicks must be broadband, min_ms to the nearest frame, echo-aware merging, consistent boxes

# Columns of a call, in the order of the per-file arrays the store keeps.
CALL_COLUMNS = ("start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz", "peak_freq_hz", "score")

# samples per push, for the command and detect_calls alike (the noise floor keeps one median per block, so both cut
# a recording the same way to agree call for call): 0.17-0.34 s at 192-384 kHz; 4x longer ran no faster
BLOCK_SAMPLES = 1 << 16
MAX_DB = 150.0  # thresholds over the noise floor: past 24-bit audio's whole range (144 dB) nothing can cross them
MAX_HZ = 10e6  # band edges: past any recording's Nyquist (a higher edge is clipped there anyway)
MAX_MS = 60_000.0  # durations: a minute is far past any call, merge gap or frame
_ECHO_RANGE = np.float32(1e3)  # 30 dB: echoes are 10-20 dB under their call (the protocol's, the demo's, the field's)
_QUIET_FLOOR = 1e-10  # per-sample variance of -100 dBFS noise: the floor of a digitally silent stretch


@dataclass(frozen=True)
class DetectorParams:
    """Everything that decides which calls are found; its hash (with the detector version) names the outputs."""

    band_low_hz: float = 15_000.0
    band_high_hz: float = 120_000.0  # clipped at the recording's Nyquist (a 192 kHz file keeps 15-96 kHz)
    high_db: float = 13.0  # a call has a frame this far over the floor (pure pink noise: at most ~11.5 dB in 30 s) ...
    low_db: float = 10.0  # ... and extends while above this (pure noise stays under ~10.7 dB)
    min_ms: float = 1.0
    max_ms: float = 80.0  # longer events (rain, a constant tone) are split into pieces this long
    merge_ms: float = 3.0
    echo_db: float = 8.0  # an event within merge_ms of a call merges into it when this much weaker (an echo: 9-20 dB)
    max_calls_per_second: int = 250  # a feeding buzz reaches ~200 calls/s
    frame_ms: float = 1.0  # FFT length: 384 samples at 384 kHz, 1 kHz bins
    hop_ms: float = 1.0  # frames do not overlap: half the FFT work of a 0.5 ms hop
    floor_seconds: float = 3.0  # span of the running median noise floor
    integrate_frames: int = 3  # a bin's least SNR over this many frames (a CF/QCF call holds its bins) ...
    integrate_gain: float = 2.9  # ... times this competes with the one-frame SNR for the frame's score: 2.9 (4.6 dB)
    # puts the 3-frame least SNR's 1e-4 quantile on pink noise where the one-frame SNR's is (6.2 vs 10.8 dB)
    click_crest: float = 3.0  # a frame whose energy peaks this far over its mean in one eighth is a click candidate (0: off) ...
    click_share: float = 0.85  # ... and a click if its three strongest neighbouring in-band bins of that eighth hold less
    # than this share of its power: the protocol's clicks (over pink or quiet noise, 192-500 kHz) reach at most 0.80,
    # loud 1-2 ms FM calls' crest frames have a median of 0.99

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        for name in ("high_db", "low_db", "echo_db"):
            if not 0 <= getattr(self, name) <= MAX_DB:
                raise ValueError(f"need 0 <= {name} <= {MAX_DB:g} dB, got {getattr(self, name):g}")
        for name in ("min_ms", "max_ms", "merge_ms", "frame_ms", "hop_ms"):
            if getattr(self, name) > MAX_MS:
                raise ValueError(f"need {name} <= {MAX_MS:g} ms, got {getattr(self, name):g}")
        for name in ("band_low_hz", "band_high_hz"):
            if getattr(self, name) > MAX_HZ:
                raise ValueError(f"need {name} <= {MAX_HZ:g} Hz, got {getattr(self, name):g}")
        if not 0 <= self.band_low_hz < self.band_high_hz:
            raise ValueError(f"need 0 <= band low < band high, got {self.band_low_hz:g}-{self.band_high_hz:g} Hz")
        if not self.low_db <= self.high_db:
            raise ValueError(f"need low_db <= high_db, got {self.low_db:g} and {self.high_db:g}")
        if not 0 <= self.min_ms <= self.max_ms or self.max_ms <= 0:
            raise ValueError(f"need 0 <= min_ms <= max_ms and max_ms > 0, got {self.min_ms:g} and {self.max_ms:g}")
        if self.merge_ms < 0 or self.echo_db < 0 or self.max_calls_per_second < 1:
            raise ValueError("need merge_ms >= 0, echo_db >= 0 and max_calls_per_second >= 1")
        if not 0 < self.hop_ms <= self.frame_ms or self.floor_seconds <= 0:
            raise ValueError("need 0 < hop_ms <= frame_ms and floor_seconds > 0")
        if self.integrate_frames < 1 or self.integrate_gain <= 0 or self.click_crest < 0 or not 0 < self.click_share <= 1:
            raise ValueError("need integrate_frames >= 1, integrate_gain > 0, click_crest >= 0 and 0 < click_share <= 1")


@dataclass(frozen=True)
class Geometry:
    """The detector's frames and band at one sample rate."""

    sample_rate: int
    n_fft: int
    hop: int
    first_bin: int  # band bins: first_bin .. last_bin inclusive
    last_bin: int
    band_low_hz: float
    band_high_hz: float  # after clipping at Nyquist
    band_cut: bool  # the requested band reached above Nyquist

    @classmethod
    def of(cls, params: DetectorParams, sample_rate: int) -> Geometry:
        n_fft = max(16, 4 * round(params.frame_ms * sample_rate / 4000))
        hop = max(1, min(n_fft, round(params.hop_ms * sample_rate / 1000)))
        nyquist = sample_rate / 2
        high = min(params.band_high_hz, nyquist)
        if params.band_low_hz >= high:
            from bat_core.errors import AudioError

            raise AudioError(f"the band {params.band_low_hz:g}-{params.band_high_hz:g} Hz lies above the Nyquist "
                             f"frequency ({nyquist:g} Hz) of a {sample_rate} Hz recording: nothing to detect")
        resolution = sample_rate / n_fft
        first = max(1, math.ceil(params.band_low_hz / resolution))
        last = min(n_fft // 2 - 1, math.floor(high / resolution))
        last = max(first, last)
        return cls(sample_rate, n_fft, hop, first, last, float(params.band_low_hz), float(high),
                   params.band_high_hz > nyquist)

    def bin_hz(self, bins: np.ndarray) -> np.ndarray:
        return (self.first_bin + np.asarray(bins, dtype=np.float64)) * self.sample_rate / self.n_fft


class _Features:
    """Per-frame values of the frames not yet settled: score (linear SNR), band edges and peak of active frames."""

    def __init__(self, start: int = 0):
        self.start = start  # frame index of the first held frame
        self.score = np.zeros(0, np.float32)
        self.low = np.zeros(0, np.int32)
        self.high = np.zeros(0, np.int32)
        self.peak = np.zeros(0, np.int32)
        self.peak_power = np.zeros(0, np.float32)

    def extend(self, score, low, high, peak, peak_power) -> None:
        self.score = np.concatenate([self.score, score])
        self.low = np.concatenate([self.low, low])
        self.high = np.concatenate([self.high, high])
        self.peak = np.concatenate([self.peak, peak])
        self.peak_power = np.concatenate([self.peak_power, peak_power])

    def drop(self, count: int) -> None:
        self.start += count
        for name in ("score", "low", "high", "peak", "peak_power"):
            setattr(self, name, getattr(self, name)[count:])


class StreamingDetector:
    """Calls of one recording fed block by block: ``push`` returns the calls it settles, ``finish`` the rest.

    Calls are rows of ``CALL_COLUMNS`` (float64), in seconds from the first sample pushed.
    """

    def __init__(self, sample_rate: int, params: DetectorParams | None = None):
        self.params = params or DetectorParams()
        self.geometry = Geometry.of(self.params, checked_rate(sample_rate))
        g = self.geometry
        self.window = np.hanning(g.n_fft + 2)[1:-1].astype(np.float32)  # no zero end points: every sample counts
        eighth = g.n_fft // 8
        self._eighth_window = np.hanning(eighth + 2)[1:-1]
        eighth_hz = np.fft.rfftfreq(eighth, 1 / g.sample_rate)
        widened = g.sample_rate / eighth  # one bin either side, so a narrow band still holds three bins
        in_band = np.flatnonzero((eighth_hz >= g.band_low_hz - widened) & (eighth_hz <= g.band_high_hz + widened))
        self._eighth_band = slice(max(1, int(in_band[0])), int(in_band[-1]) + 1)
        self.quiet_floor = np.float32(_QUIET_FLOOR * 3 * float(np.sum(self.window.astype(np.float64) ** 2)))
        self.frame_seconds = g.hop / g.sample_rate
        self.low_ratio = np.float32(10 ** (self.params.low_db / 10))
        self.high_ratio = np.float32(10 ** (self.params.high_db / 10))
        self.merge_frames = max(0, math.ceil(self.params.merge_ms / 1000 / self.frame_seconds))
        self.echo_ratio = 10 ** (self.params.echo_db / 10)
        self.max_frames = max(1, round(self.params.max_ms / 1000 / self.frame_seconds))
        # to the nearest frame (a frame is 0.99 ms at 250 kHz: a one-frame call is 1 ms, not shorter)
        self.min_frames = max(1, math.floor((self.params.min_ms / 1000 * g.sample_rate - g.n_fft) / g.hop + 1.5))
        self._remainder = np.zeros(0, np.float32)
        self._medians: deque[tuple[np.ndarray, int]] = deque()
        self._median_frames = 0
        self._floor_frames = max(1, round(self.params.floor_seconds / self.frame_seconds))
        self._features = _Features()
        # the SNR of the last integrate_frames - 1 frames (none before the first: zeros)
        self._ratio_tail = np.zeros((self.params.integrate_frames - 1, g.last_bin - g.first_bin + 1), np.float32)
        self._pending: list[np.ndarray] = []  # calls of the current second, waiting for the cap
        self._pending_second = -1
        self.samples = 0
        self.frames = 0

    # -- stream ---------------------------------------------------------------------------------------
    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self.samples += len(block)
        buffer = np.concatenate([self._remainder, block]) if len(self._remainder) else block
        g = self.geometry
        count = 0 if len(buffer) < g.n_fft else (len(buffer) - g.n_fft) // g.hop + 1
        if count == 0:
            self._remainder = buffer
            return self._calls([])
        if g.hop == g.n_fft:
            frames = buffer[: count * g.n_fft].reshape(count, g.n_fft)
        else:
            frames = np.lib.stride_tricks.sliding_window_view(buffer, g.n_fft)[:: g.hop][:count]
        self._remainder = buffer[count * g.hop:].copy()
        return self._calls(self._analyse(frames))

    def finish(self) -> np.ndarray:
        """The calls still open, after the last partial frame (zero-padded) is analysed."""
        g = self.geometry
        settled: list[np.ndarray] = []
        covered = (self.frames - 1) * g.hop + g.n_fft if self.frames else 0
        if self.samples > covered:  # samples no frame has seen yet (all of a file shorter than a frame)
            padded = np.zeros((1, g.n_fft), np.float32)
            padded[0, : len(self._remainder)] = self._remainder[: g.n_fft]
            settled = self._analyse(padded)
        settled += self._settle(final=True)
        out = self._calls(settled)
        return np.concatenate([out, self._flush_pending()]) if len(self._pending) else out

    @property
    def seconds(self) -> float:
        return self.samples / self.geometry.sample_rate

    # -- spectra --------------------------------------------------------------------------------------
    def _analyse(self, frames: np.ndarray) -> list[np.ndarray]:
        g = self.geometry
        # float64 in: numpy's pocketfft is ~4x slower on float32 rows of a few hundred points (numpy 2.4)
        spectrum = np.fft.rfft(np.multiply(frames, self.window, dtype=np.float64), axis=1)
        # neighbours of the band's edge bins are summed in too
        part = spectrum[:, g.first_bin - 1: g.last_bin + 2]
        power = (np.square(part.real) + np.square(part.imag)).astype(np.float32)
        smoothed = power[:, :-2] + power[:, 1:-1] + power[:, 2:]
        floor = self._floor(smoothed)
        ratio = smoothed * (np.float32(1) / floor)
        if self.params.click_crest > 0:
            ratio[self._clicks(frames)] = 0
        k = self.params.integrate_frames
        if k > 1:
            held = np.concatenate([self._ratio_tail, ratio])
            self._ratio_tail = held[-(k - 1):]
            n = len(ratio)
            lasting = held[len(held) - n:]
            for back in range(1, k):  # the least SNR of the bin over this frame and the k - 1 before it
                lasting = np.minimum(lasting, held[len(held) - n - back: len(held) - back])
            ratio = np.maximum(ratio, lasting * np.float32(self.params.integrate_gain))
        score = ratio.max(axis=1)
        low = np.full(len(frames), -1, np.int32)
        high = np.full(len(frames), -1, np.int32)
        peak = np.full(len(frames), -1, np.int32)
        peak_power = np.zeros(len(frames), np.float32)
        active = np.flatnonzero(score >= self.low_ratio)
        if len(active):
            above = ratio[active] >= self.low_ratio
            low[active] = above.argmax(axis=1)
            high[active] = above.shape[1] - 1 - above[:, ::-1].argmax(axis=1)
            band_power = np.where(above, power[active, 1:-1], np.float32(-1))  # the peak is one of the call's bins
            peak[active] = band_power.argmax(axis=1)
            peak_power[active] = band_power.max(axis=1)
        self.frames += len(frames)
        self._features.extend(score, low, high, peak, peak_power)
        return self._settle(final=False)

    def _clicks(self, frames: np.ndarray) -> np.ndarray:
        """Frames holding a click: short and broadband. Short: the energy of one eighth of the frame is
        ``click_crest`` times the frame's mean eighth (a click lasts 0.3 ms or less). Broadband: that eighth's
        strongest three neighbouring in-band bins hold under ``click_share`` of its power, DC aside (a click is
        white, and its power outside the band counts against it as much as its spread inside). A call's onset or
        end, or a whole loud 1 ms call, can be as short in a frame, but an eighth of it (~0.12 ms, about the window
        over which the steepest FM sweep, ~100 kHz/ms, is narrowest) is a tone: three bins hold ~all of it."""
        eighth = frames.shape[1] // 8
        parts = frames[:, : 8 * eighth].reshape(len(frames), 8, eighth)
        energy = np.square(parts).sum(axis=2)
        short = np.flatnonzero(energy.max(axis=1) * np.float32(8)
                               > np.float32(self.params.click_crest) * (energy.sum(axis=1) + np.float32(1e-30)))
        clicks = np.zeros(len(frames), bool)
        if len(short) == 0:
            return clicks
        loudest = parts[short, energy[short].argmax(axis=1)]
        spectrum = np.fft.rfft(loudest * self._eighth_window, axis=1)
        power = np.square(spectrum.real) + np.square(spectrum.imag)
        band = power[:, self._eighth_band]
        if band.shape[1] < 3:  # an eighth too short to tell a tone from a click (rates under ~50 kHz): crest alone
            clicks[short] = True
            return clicks
        strongest = (band[:, :-2] + band[:, 1:-1] + band[:, 2:]).max(axis=1)
        clicks[short] = strongest < self.params.click_share * (power[:, 1:].sum(axis=1) + 1e-30)
        return clicks

    def _floor(self, smoothed: np.ndarray) -> np.ndarray:
        """Median over the last ``floor_seconds``: the median of the per-block medians in that span."""
        if len(smoothed) >= 8 or not self._medians:  # a last frame or two would weigh as much as a whole block
            # every 4th frame: a median of ~60 frames per block is as good a floor and costs a quarter
            sample = smoothed[:: 4] if len(smoothed) >= 64 else smoothed
            self._medians.append((_median_rows(sample), len(smoothed)))
            self._median_frames += len(smoothed)
        while len(self._medians) > 1 and self._median_frames - self._medians[0][1] >= self._floor_frames:
            self._median_frames -= self._medians.popleft()[1]
        medians = [median for median, _ in self._medians]
        floor = medians[0] if len(medians) == 1 else _median_rows(np.stack(medians))
        return np.maximum(floor, self.quiet_floor).astype(np.float32)

    # -- frames -> calls ------------------------------------------------------------------------------
    def _settle(self, final: bool) -> list[np.ndarray]:
        """Calls of the held frames that no later frame can change; the frames of an open call stay held."""
        f = self._features
        n = len(f.score)
        active = np.flatnonzero(f.score >= self.low_ratio)
        if len(active) == 0:
            f.drop(n)
            return []
        starts, ends = self._groups(active)
        keep_from = n
        if not final and ends[-1] + self.merge_frames + 1 > n - 1:
            # the last group may still grow; bound it (a never-ending event is cut at twice max_ms)
            if n - starts[-1] <= 2 * self.max_frames + self.merge_frames:
                keep_from = int(starts[-1])
                starts, ends = starts[:-1], ends[:-1]
        calls = [call for start, end in zip(starts, ends) for call in self._group_calls(int(start), int(end))]
        f.drop(keep_from)
        return calls

    def _groups(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last frames (inclusive) of the events the active frames make: runs apart by at most one quiet
        frame are one event; a later run within ``merge_frames`` joins the event when ``echo_db`` weaker than it (an
        echo), if it reaches ``high_db`` or is within ``_ECHO_RANGE`` of it (a run under high_db that much weaker than
        a loud call is a noise blip: it would only stretch the box)."""
        run_gap = min(1, self.merge_frames)
        breaks = np.flatnonzero(np.diff(active) > run_gap + 1)
        run_starts = np.concatenate([[active[0]], active[breaks + 1]])
        run_ends = np.concatenate([active[breaks], [active[-1]]])
        if self.merge_frames <= run_gap or len(run_starts) == 1:
            return run_starts, run_ends
        peaks = np.maximum.reduceat(self._features.score, run_starts)
        starts, ends, peak = [int(run_starts[0])], [int(run_ends[0])], float(peaks[0])
        for start, end, run_peak in zip(run_starts[1:].tolist(), run_ends[1:].tolist(), peaks[1:].tolist()):
            echo = run_peak <= peak / self.echo_ratio and (run_peak >= self.high_ratio or run_peak * _ECHO_RANGE >= peak)
            if start - ends[-1] - 1 <= self.merge_frames and echo:
                ends[-1] = end
            else:
                starts.append(start)
                ends.append(end)
                peak = run_peak
        return np.array(starts), np.array(ends)

    def _group_calls(self, start: int, end: int) -> list[np.ndarray]:
        f = self._features
        if f.score[start: end + 1].max() < self.high_ratio:
            return []
        calls = []
        for piece_start in range(start, end + 1, self.max_frames):
            piece_end = min(end, piece_start + self.max_frames - 1)
            call = self._call(piece_start, piece_end)
            if call is not None:
                calls.append(call)
        return calls

    def _call(self, start: int, end: int) -> np.ndarray | None:
        f, g = self._features, self.geometry
        first, last = f.start + start, f.start + end
        start_s = first * g.hop / g.sample_rate
        end_s = min((last * g.hop + g.n_fft) / g.sample_rate, max(self.samples, 1) / g.sample_rate)
        if end - start + 1 < self.min_frames:
            return None
        span = slice(start, end + 1)
        active = f.low[span] >= 0
        strongest = int(np.argmax(np.where(active, f.peak_power[span], -1)))
        low_bin, high_bin = f.low[span][active].min(), f.high[span][active].max()
        # a bin stands for the half-bin either side of it, so a box is at least one bin wide; the peak is one of its bins
        low_hz, high_hz, peak_hz = g.bin_hz([low_bin - 0.5, high_bin + 0.5, f.peak[span][strongest]])
        score_db = 10 * math.log10(max(float(f.score[span].max()), 1e-30))
        return np.array([start_s, end_s, low_hz, high_hz, peak_hz, score_db])

    def _calls(self, settled: list[np.ndarray]) -> np.ndarray:
        """Apply the per-second cap: calls wait until their second is over, then the strongest go out."""
        out = []
        for call in settled:
            second = int(call[0])
            if second != self._pending_second and self._pending:
                out.append(self._flush_pending())
            self._pending_second = second
            self._pending.append(call)
        return np.concatenate(out) if out else np.zeros((0, len(CALL_COLUMNS)))

    def _flush_pending(self) -> np.ndarray:
        calls = np.stack(self._pending)
        self._pending = []
        cap = self.params.max_calls_per_second
        if len(calls) > cap:
            strongest = np.sort(np.argsort(-calls[:, 5], kind="stable")[:cap])
            calls = calls[strongest]
        return calls


def checked_rate(sample_rate) -> int:
    """The sample rate as an int, or a ValueError naming it (0, negative, NaN or fractional rates mean a caller's slip)."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        rate = math.nan
    if not (math.isfinite(rate) and rate >= 1 and rate == int(rate)):
        raise ValueError(f"sample_rate must be a positive whole number of samples per second, got {sample_rate!r}")
    return int(rate)


def _median_rows(values: np.ndarray) -> np.ndarray:
    """Per-column median (the upper one of an even count): one partition, without np.median's overhead."""
    middle = len(values) // 2
    return np.partition(values, middle, axis=0)[middle]


def detect_calls_array(samples: np.ndarray, sample_rate: int, params: DetectorParams | None = None,
                       block_samples: int = BLOCK_SAMPLES) -> tuple[np.ndarray, StreamingDetector]:
    """Calls of an in-memory signal as rows of ``CALL_COLUMNS``, fed in blocks as a recording is read."""
    detector = StreamingDetector(sample_rate, params)
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    parts = [detector.push(samples[i: i + block_samples]) for i in range(0, len(samples), block_samples)]
    parts.append(detector.finish())
    return np.concatenate(parts), detector
