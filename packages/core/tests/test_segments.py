"""The band-energy call detector: known answers on synthetic calls, odd files, streaming, the store."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bat_core.segments import DetectorParams, detect_calls
from bat_core.testing import StrategyContract, write_project

NOISE_SD = 0.01


def tone_call(kind: str, sample_rate: int, amplitude: float = 0.3) -> np.ndarray:
    """An FM sweep (100 -> 30 kHz, 3 ms) or a CF tone (80 kHz, 15 ms) with 0.3 ms ramps: its onset is sharp,
    so the true start is known to a fraction of a millisecond."""
    if kind == "FM":
        n = int(0.003 * sample_rate)
        track = 100e3 * (30e3 / 100e3) ** np.linspace(0, 1, n)
    else:
        n = int(0.015 * sample_rate)
        track = np.full(n, 80e3)
    call = np.sin(2 * np.pi * np.cumsum(track) / sample_rate)
    ramp = int(0.0003 * sample_rate)
    envelope = np.ones(n)
    envelope[:ramp] = np.linspace(0, 1, ramp)
    envelope[-ramp:] = np.linspace(1, 0, ramp)
    return (amplitude * call * envelope).astype(np.float32)


def recording(kind: str, sample_rate: int, onsets: list[float], seconds: float, snr_db: float | None,
              seed: int = 0) -> np.ndarray:
    """Calls at ``onsets`` (s) in white noise; ``snr_db``: call RMS over noise RMS (None: near-silent noise)."""
    rng = np.random.default_rng(seed)
    noise = NOISE_SD if snr_db is not None else 1e-4
    audio = rng.normal(0, noise, int(seconds * sample_rate)).astype(np.float32)
    call = tone_call(kind, sample_rate)
    if snr_db is not None:
        call = call * (NOISE_SD * 10 ** (snr_db / 20) / np.sqrt(np.mean(call ** 2)))
    for onset in onsets:
        start = int(onset * sample_rate)
        audio[start:start + len(call)] += call
    return audio


def assert_found(calls: pd.DataFrame, onsets: list[float], tolerance_s: float = 0.002) -> None:
    assert len(calls) == len(onsets), calls
    np.testing.assert_allclose(calls.start_time_s.to_numpy(), onsets, atol=tolerance_s)


@pytest.mark.parametrize("kind", ["FM", "CF"])
@pytest.mark.parametrize("snr_db", [None, 6.0])
@pytest.mark.parametrize("sample_rate", [250_000, 500_000])
def test_known_calls_are_found_with_onsets_within_2_ms(kind, snr_db, sample_rate):
    onsets = [0.0731, 0.2113, 0.3877]
    calls = detect_calls(recording(kind, sample_rate, onsets, 0.5, snr_db), sample_rate)
    assert_found(calls, onsets)
    length = 0.003 if kind == "FM" else 0.015
    np.testing.assert_allclose(calls.end_time_s - calls.start_time_s, length, atol=0.003)
    if kind == "CF":
        np.testing.assert_allclose(calls.peak_freq_hz, 80e3, atol=2.5e3)
        assert (calls.low_freq_hz <= 80e3).all() and (calls.high_freq_hz >= 80e3).all()
    else:
        top = 85e3 if snr_db is None else 75e3  # at 6 dB the fast start of the sweep spreads below the low threshold
        assert (calls.low_freq_hz < 40e3).all() and (calls.high_freq_hz > top).all(), calls
    assert list(calls.columns) == ["start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz", "peak_freq_hz", "score"]
    assert (calls.score >= 15).all()


def test_noise_alone_gives_no_calls():
    audio = np.random.default_rng(3).normal(0, NOISE_SD, 384_000 * 2).astype(np.float32)
    assert detect_calls(audio, 384_000).empty


def test_a_call_crossing_a_block_boundary_is_found_once():
    from bat_core.segments.detector import detect_calls_array

    rate = 250_000
    onset = (1 << 16) / rate - 0.007  # a 15 ms call straddling the first block's end
    audio = recording("CF", rate, [onset], 0.6, None)
    calls, _ = detect_calls_array(audio, rate, block_samples=1 << 16)
    assert len(calls) == 1 and abs(calls[0, 0] - onset) < 0.002, calls
    whole, _ = detect_calls_array(audio, rate, block_samples=len(audio))
    # the noise floor is kept per block, so band edges and score may differ a little, and so may the frame after the
    # call's end: the 3-frame statistic lifts it to the low threshold (the least SNR of call, call, noise is the noise's)
    np.testing.assert_allclose(calls[:, [0, 4]], whole[:, [0, 4]], atol=1e-9)
    np.testing.assert_allclose(calls[:, 1], whole[:, 1], atol=1.01 * 248 / rate)  # one frame


def test_echo_within_merge_gap_belongs_to_its_call():
    rate = 384_000
    audio = recording("FM", rate, [0.1], 0.3, None)
    call = tone_call("FM", rate)
    echo = int((0.1 + 0.005) * rate)  # 2 ms after the 3 ms call ends
    audio[echo:echo + len(call)] += 0.3 * call
    calls = detect_calls(audio, rate)
    assert len(calls) == 1 and calls.end_time_s[0] > 0.107, calls
    apart = detect_calls(audio, rate, DetectorParams(merge_ms=1.0))
    assert len(apart) == 2, apart


def test_too_many_calls_per_second_keep_the_strongest():
    rate = 250_000
    onsets = [0.05 + 0.04 * i for i in range(20)]
    audio = recording("FM", rate, onsets, 1.0, None)
    strong = int(onsets[7] * rate)
    audio[strong:strong + 750] *= 4
    calls = detect_calls(audio, rate, DetectorParams(max_calls_per_second=5))
    assert len(calls) == 5 and calls.start_time_s.is_monotonic_increasing
    assert np.isclose(calls.start_time_s, onsets[7], atol=0.002).any()


def test_long_event_is_split_at_max_ms():
    rate = 250_000
    t = np.arange(int(0.3 * rate)) / rate
    audio = recording("FM", rate, [], 1.0, 20)
    start = int(0.4 * rate)
    audio[start:start + len(t)] += (0.2 * np.sin(2 * np.pi * 50e3 * t)).astype(np.float32)
    calls = detect_calls(audio, rate, DetectorParams(max_ms=80))
    assert len(calls) == 4 and (calls.end_time_s - calls.start_time_s <= 0.081).all(), calls


def test_band_is_clipped_at_nyquist_and_a_band_above_it_is_an_error():
    from bat_core.errors import AudioError
    from bat_core.segments.detector import Geometry

    geometry = Geometry.of(DetectorParams(), 192_000)
    assert geometry.band_high_hz == 96_000 and geometry.band_cut
    assert not Geometry.of(DetectorParams(), 384_000).band_cut
    with pytest.raises(AudioError, match="Nyquist"):
        Geometry.of(DetectorParams(band_low_hz=30_000), 44_100)


def test_odd_inputs():
    assert detect_calls(np.zeros(0, np.float32), 250_000).empty
    assert detect_calls(np.zeros(10, np.float32), 250_000).empty  # shorter than a frame
    assert detect_calls(np.zeros(250_000, np.float32), 250_000).empty  # digital silence
    silent_but_one = np.zeros(250_000, np.float32)
    call = tone_call("CF", 250_000)
    silent_but_one[50_000:50_000 + len(call)] = call
    assert len(detect_calls(silent_but_one, 250_000)) == 1
    with pytest.raises(ValueError, match="NaN"):
        detect_calls(np.array([0.0, np.nan], np.float32), 250_000)
    with pytest.raises(ValueError):
        DetectorParams(low_db=20, high_db=10)


# -- short, loud calls against clicks (a tester found loud 1-2 ms calls and feeding buzzes dropped as clicks) --------
def hann_fm_call(sample_rate: int, ms: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A demo-corpus FM call (``bat_core.demo``: exponential sweep from 90-110 to 25-35 kHz, Hann envelope), ``ms`` long."""
    n = int(sample_rate * ms / 1000)
    track = rng.uniform(90e3, 110e3) * (rng.uniform(25e3, 35e3) / 100e3) ** np.linspace(0, 1, n)
    return amplitude * np.sin(2 * np.pi * np.cumsum(track) / sample_rate) * np.hanning(n)


def call_train(sample_rate: int, ms: float, amplitude: float, period_s: float, seconds: float, seed: int = 0):
    """FM calls every ``period_s`` (+-10%) in the demo corpus's quiet white noise; the audio and the onsets."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(0, 0.001, int(seconds * sample_rate))
    onsets, onset = [], 0.0123
    while onset + ms / 1000 + 0.005 < seconds:
        call = hann_fm_call(sample_rate, ms, amplitude, rng)
        start = int(onset * sample_rate)
        audio[start:start + len(call)] += call
        onsets.append(start / sample_rate)
        onset += period_s * rng.uniform(0.9, 1.1)
    return audio.astype(np.float32), np.array(onsets)


def found_share(calls: pd.DataFrame, onsets: np.ndarray, tolerance_s: float = 0.002) -> float:
    starts = calls.start_time_s.to_numpy()
    return float(np.mean([len(starts) > 0 and np.abs(starts - onset).min() <= tolerance_s for onset in onsets]))


@pytest.mark.parametrize("sample_rate", [250_000, 384_000])
@pytest.mark.parametrize(("ms", "amplitude"), [(1.0, 0.3), (2.0, 0.3), (2.0, 0.003)])
def test_short_calls_are_found_however_loud(sample_rate, ms, amplitude):
    audio, onsets = call_train(sample_rate, ms, amplitude, 0.05, 1.0)
    calls = detect_calls(audio, sample_rate)
    assert found_share(calls, onsets) >= 0.9 and len(calls) <= len(onsets), (len(calls), len(onsets))


@pytest.mark.parametrize("sample_rate", [250_000, 384_000])
@pytest.mark.parametrize("amplitude", [0.03, 0.3])
def test_a_feeding_buzz_is_found_call_by_call(sample_rate, amplitude):
    """1.5 ms calls every 5 ms (200 a second): each its own box, not merged as echoes, not capped."""
    audio, onsets = call_train(sample_rate, 1.5, amplitude, 0.005, 1.0)
    calls = detect_calls(audio, sample_rate)
    assert found_share(calls, onsets) >= 0.9 and len(calls) <= len(onsets), (len(calls), len(onsets))
    assert (calls.end_time_s - calls.start_time_s).median() <= 0.0025


@pytest.mark.parametrize("sample_rate", [192_000, 250_000, 384_000, 500_000])
def test_clicks_are_rejected_however_loud(sample_rate):
    """The protocol's clicks (0.05-0.3 ms broadband bursts, 50 a second) over its pink noise, and the same clicks
    ten times louder over quiet noise: no call."""
    from bat_core.scenes import synth_scene

    scene = synth_scene(2.0, sample_rate, 20.0, np.random.default_rng(4), clicks_per_second=50, buzz=False)
    clicks = scene.parts["clicks"]
    assert np.count_nonzero(clicks) > 0
    assert detect_calls((scene.parts["pink"] + clicks).astype(np.float32), sample_rate).empty
    quiet = np.random.default_rng(5).normal(0, 0.001, len(clicks))
    assert detect_calls((quiet + 10 * clicks).astype(np.float32), sample_rate).empty


def test_boxes_hold_their_peak_and_are_at_least_a_bin_wide():
    """Peak frequency within [low, high] and high - low >= one FFT bin, on scenes of every call type with echoes,
    clicks and a buzz (before: zero-width boxes, and peaks taken from bins outside the call)."""
    from bat_core.scenes import synth_scene
    from bat_core.segments.detector import Geometry

    for sample_rate, snr_db in [(250_000, 6.0), (384_000, 12.0), (500_000, 20.0)]:
        scene = synth_scene(3.0, sample_rate, snr_db, np.random.default_rng(7))
        calls = detect_calls(scene.samples, sample_rate)
        geometry = Geometry.of(DetectorParams(), sample_rate)
        assert len(calls) > 10
        assert (calls.high_freq_hz - calls.low_freq_hz >= sample_rate / geometry.n_fft - 1e-6).all(), calls
        assert ((calls.low_freq_hz <= calls.peak_freq_hz) & (calls.peak_freq_hz <= calls.high_freq_hz)).all(), calls


@pytest.mark.parametrize("rate", [0, -250_000, float("nan"), float("inf"), 250_000.5, "fast"])
def test_a_bad_sample_rate_is_named(rate):
    with pytest.raises(ValueError, match="sample_rate must be a positive whole number.*got"):
        detect_calls(np.zeros(1000, np.float32), rate)


@pytest.mark.parametrize("field", ["high_db", "low_db", "merge_ms", "min_ms", "max_ms", "echo_db", "band_high_hz"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e300])
def test_non_finite_or_absurd_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        DetectorParams(**{field: value})


# -- through the runner and the store ---------------------------------------------------------------
def _project(tmp_path):
    onsets = {"a_250k.wav": [0.1, 0.31], "b_500k.wav": [0.05, 0.2, 0.45]}
    recordings = {
        "a_250k.wav": (recording("FM", 250_000, onsets["a_250k.wav"], 0.5, None, seed=1), 250_000),
        "b_500k.wav": (recording("CF", 500_000, onsets["b_500k.wav"], 0.6, None, seed=2), 500_000),
        "quiet.wav": (np.zeros(100_000, np.float32), 250_000),
        "short.wav": (np.zeros(20, np.float32), 384_000),
    }
    return write_project(tmp_path / "proj", recordings, subtype="FLOAT"), onsets


def test_project_run_writes_one_table_in_original_seconds_and_resumes(tmp_path):
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.segments.command import segment_project
    from bat_core.segments.table import BOX_COLUMNS, read_boxes
    from bat_core.store import read_manifest

    root, onsets = _project(tmp_path)
    options = RunOptions(workers=0, show_progress=False)
    summary = segment_project(Dataset.from_root(root), options=options)
    assert (summary.run.done, summary.run.failed) == (4, 0) and summary.n_calls == 5
    table = read_boxes(summary.table_path)
    assert list(table.columns[: len(BOX_COLUMNS)]) == list(BOX_COLUMNS)
    for name, expected in onsets.items():
        rows = table[table["File Name"] == name]
        assert list(rows.call_index) == list(range(len(expected)))
        np.testing.assert_allclose(rows.start_time_s, expected, atol=0.002)
    manifest = read_manifest(summary.run.manifest_path).set_index("file_name")
    extra = manifest.extra.map(__import__("json").loads)
    assert extra["quiet.wav"]["n_calls"] == 0 and manifest.status["quiet.wav"] == "ok"
    assert extra["short.wav"]["n_calls"] == 0 and manifest.status["short.wav"] == "ok"
    assert extra["b_500k.wav"]["n_calls"] == 3 and extra["b_500k.wav"]["band_hz"] == [15_000.0, 120_000.0]
    again = segment_project(Dataset.from_root(root), options=options)
    assert (again.run.done, again.run.skipped) == (0, 4) and again.n_calls == 5
    other = segment_project(Dataset.from_root(root), DetectorParams(high_db=30), options=options)
    assert other.table_path != summary.table_path and summary.table_path.is_file(), "configurations live side by side"


def test_the_table_follows_the_dataset_as_it_is_now(tmp_path):
    """A file taken out of annotations.csv loses its calls from the folded table at the next run (before: kept), and a
    file of the same name under another root sharing the --derived folder does not lend its calls."""
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.segments.command import segment_project
    from bat_core.segments.table import read_boxes

    root, onsets = _project(tmp_path)
    options = RunOptions(workers=0, show_progress=False)
    assert segment_project(Dataset.from_root(root), options=options).n_calls == 5
    annotations = root / "data" / "annotations.csv"
    table = pd.read_csv(annotations)
    table[table["File Name"] != "b_500k.wav"].to_csv(annotations, index=False)
    summary = segment_project(Dataset.from_root(root), options=options)
    assert summary.n_calls == 2 and set(read_boxes(summary.table_path)["File Name"]) == {"a_250k.wav"}

    # another root's a_250k.wav (silence), nothing selected to run: the first root's calls of that name are not its own
    other = write_project(tmp_path / "other", {"a_250k.wav": (np.zeros(50_000, np.float32), 250_000)}, subtype="FLOAT")
    assert segment_project(Dataset.from_root(other, root / "derived").select(limit=0), options=options).n_calls == 0


def test_bad_files_are_failed_rows(tmp_path):
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.segments.command import segment_project
    from bat_core.testing import add_bad_files

    root, _ = _project(tmp_path)
    expected = add_bad_files(root)
    summary = segment_project(Dataset.from_root(root), options=RunOptions(workers=1, show_progress=False))
    reasons = dict(summary.run.failures)
    assert set(reasons) == set(expected)
    for name, text in expected.items():
        assert text in reasons[name]
    assert summary.run.done == 5 and summary.run.accounted  # four good files and the stereo one


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from bat_core.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "segment", *args], capture_output=True, text=True)


def test_cli_shards_union_equals_one_run(tmp_path):
    root, _ = _project(tmp_path)
    shards = [_cli("--root", str(root), "--derived", str(tmp_path / "sharded"), "-q", "--num-workers", "0",
                   "--shard", f"{i}/2") for i in (1, 0)]  # the second shard first: its rows are the manifest's first
    assert all(result.returncode == 0 for result in shards), [result.stderr for result in shards]
    whole = _cli("--root", str(root), "--derived", str(tmp_path / "whole"), "-q", "--num-workers", "0")
    assert whole.returncode == 0 and "5 calls" in whole.stdout and "given" in whole.stdout, whole.stdout
    sharded = pd.read_parquet(next((tmp_path / "sharded" / "segments").glob("*.parquet")))
    together = pd.read_parquet(next((tmp_path / "whole" / "segments").glob("*.parquet")))
    pd.testing.assert_frame_equal(sharded, together)  # in the annotations' order, however the files were run


def test_cli_rejects_a_bad_band(tmp_path):
    result = _cli("--root", str(tmp_path), "--band", "120000-15000")
    assert result.returncode == 2 and "LOW-HIGH" in result.stderr


@pytest.mark.parametrize(("option", "value"), [
    ("--merge-ms", "nan"), ("--merge-ms", "inf"), ("--merge-ms", "1e300"), ("--high-db", "1e300"), ("--low-db", "nan"),
    ("--min-ms", "-1"), ("--max-ms", "inf"), ("--echo-db", "nan"), ("--detection-threshold", "nan"),
    ("--max-seconds", "1e300"), ("--band", "15000-inf"), ("--band", "nan-120000")])
def test_cli_refuses_non_finite_or_absurd_numbers_before_any_work(tmp_path, capsys, option, value):
    from bat_core.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["segment", "--root", str(tmp_path), option, value])
    assert exit_.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and option in errors[0] and value in errors[0], errors


def test_cli_limits_are_the_detectors():
    from bat_core.cli import SEGMENT_DEFAULTS, SEGMENT_LIMITS
    from bat_core.segments.detector import MAX_DB, MAX_HZ, MAX_MS

    assert SEGMENT_LIMITS == {"db": MAX_DB, "ms": MAX_MS, "hz": MAX_HZ}
    defaults = DetectorParams()
    assert SEGMENT_DEFAULTS == {"band": (defaults.band_low_hz, defaults.band_high_hz), "high_db": defaults.high_db,
                                "low_db": defaults.low_db, "min_ms": defaults.min_ms, "max_ms": defaults.max_ms,
                                "merge_ms": defaults.merge_ms, "echo_db": defaults.echo_db,
                                "max_calls_per_second": defaults.max_calls_per_second}


def test_cli_checks_the_reference_boxes_before_any_work(tmp_path, capsys):
    """A missing or broken --evaluate table, a missing --scored-files list, or --scored-files alone: exit 2 at once,
    nothing detected (before: checked only after the whole run, and --scored-files alone was ignored)."""
    from bat_core.cli import main

    root, _ = _project(tmp_path)
    derived = tmp_path / "derived"
    good = tmp_path / "calls.csv"
    good.write_text("File Name,start_time_s,end_time_s\na_250k.wav,0.1,0.11\n")
    broken = tmp_path / "broken.csv"
    broken.write_text("File Name,start\na_250k.wav,0.1\n")
    names = tmp_path / "names.txt"
    names.write_text("quiet.wav\n")
    cases = {"not found": ["--evaluate", str(tmp_path / "missing.csv")],
             "missing column": ["--evaluate", str(broken)],
             "needs --evaluate": ["--scored-files", str(names)],
             "No such file": ["--evaluate", str(good), "--scored-files", str(tmp_path / "missing.txt")]}
    for message, options in cases.items():
        code = main(["segment", "--root", str(root), "--derived", str(derived), "-q", "--num-workers", "0", *options])
        error = capsys.readouterr().err
        assert code == 2 and message in error, (options, error)
        assert not (derived / "segments").exists(), options


def test_memory_does_not_grow_with_file_length(tmp_path):
    """Peak RSS of `bat-core segment` on a 60 s 384 kHz recording stays within 30 MB of a 5 s one."""
    from bat_core.testing import cli_peak_rss_mb, write_long_recording

    peaks = {}
    for seconds in (5, 60):
        root = tmp_path / f"p{seconds}"
        write_long_recording(root / "data" / "audio" / "rec.wav", seconds=seconds, sample_rate=384_000)
        (root / "data" / "annotations.csv").write_text("File Name\nrec.wav\n")
        peaks[seconds], output = cli_peak_rss_mb(["segment", "--root", str(root), "-q", "--num-workers", "0"])
        assert f"{seconds} calls" in output, output  # one 40 kHz call a second
    assert peaks[60] < peaks[5] + 30, peaks


class TestSegmentContract(StrategyContract):
    time_axis = None  # one row per call, not per frame

    @property
    def representation(self) -> str:  # type: ignore[override]
        from bat_core.segments.command import configuration_name

        return f"segments_{configuration_name(DetectorParams())}"

    def run_strategy(self, root, models, **options):
        from bat_core.dataset import Dataset
        from bat_core.runner import RunOptions
        from bat_core.segments.command import segment_project

        run = RunOptions(workers=options.get("workers", 0), show_progress=False)
        return segment_project(Dataset.from_root(root), overwrite=options.get("overwrite", False), options=run).run

    def command(self, root, models):
        return [sys.executable, "-c", "import sys; from bat_core.cli import main; sys.exit(main(sys.argv[1:]))",
                "segment", "--root", str(root), "-q", "--num-workers", "1"]


def test_cli_evaluate_scores_the_demo_truth_and_says_when_nothing_was_scored(tmp_path):
    import re

    from bat_core.demo import write_demo_corpus

    root = write_demo_corpus(tmp_path / "demo", n_files=6)
    calls = root / "data" / "calls.csv"
    result = _cli("--root", str(root), "-q", "--num-workers", "0", "--evaluate", str(calls))
    assert result.returncode == 0, result.stderr
    onset_f1 = float(re.search(r"onset<=10ms: P [\d.]+ R [\d.]+ F1 ([\d.]+)", result.stdout).group(1))
    assert onset_f1 >= 0.9 and "6 file(s) scored" in result.stdout and "audio kept" in result.stdout

    # a reference of other files scores nothing: said, exit 1; --scored-files adds files known to hold no call
    other = tmp_path / "other.csv"
    other.write_text("File Name,start_time_s,end_time_s\nelsewhere.wav,0.1,0.11\n")
    result = _cli("--root", str(root), "-q", "--num-workers", "0", "--evaluate", str(other))
    assert result.returncode == 1 and "nothing was scored" in result.stdout
    names = tmp_path / "silent.txt"
    first = pd.read_csv(root / "data" / "annotations.csv")["File Name"].iloc[0]
    names.write_text(f"{first}\n")
    result = _cli("--root", str(root), "-q", "--num-workers", "0", "--evaluate", str(other), "--scored-files", str(names))
    assert result.returncode == 0 and "1 file(s) scored" in result.stdout
    assert re.search(r"onset<=10ms: P 0.000 R 0.000 F1 0.000 \(tp 0, fp [1-9]", result.stdout), result.stdout
