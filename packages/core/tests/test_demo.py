import hashlib

import numpy as np
import pandas as pd
import soundfile as sf

from bat_core.audio import load_audio
from bat_core.dataset import Dataset
from bat_core.demo import CALL_TYPES, write_demo_corpus


def digest(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "data").rglob("*.*"))}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = write_demo_corpus(tmp_path / "a", n_files=6, seed=3)
    b = write_demo_corpus(tmp_path / "b", n_files=6, seed=3)
    c = write_demo_corpus(tmp_path / "c", n_files=6, seed=4)
    assert digest(a) == digest(b) != digest(c)


def test_corpus_is_labelled_varied_and_mostly_silent(tmp_path):
    dataset = Dataset.from_root(write_demo_corpus(tmp_path, n_files=12))
    assert set(dataset.labels("call_type")) == set(CALL_TYPES)
    assert len(set(dataset.labels("site"))) == 4
    rates = set()
    for item in dataset:
        recording = load_audio(item.path)
        rates.add(recording.sample_rate)
        assert 0.3 <= recording.seconds <= 1.0
        loud = np.abs(recording.samples) > 0.05
        assert 0.001 < loud.mean() < 0.5, "calls present, silence dominant"
    assert rates == {192_000, 250_000, 256_000, 384_000}


def test_rerun_in_place_keeps_every_byte(tmp_path):
    write_demo_corpus(tmp_path, n_files=4, seed=1)
    first = digest(tmp_path)
    write_demo_corpus(tmp_path, n_files=4, seed=1, overwrite=True)
    assert digest(tmp_path) == first and "calls.csv" in first


def test_calls_csv_boxes_hold_the_calls(tmp_path):
    """Every loud sample lies in a box, each box starts and ends at its call, and its band holds the call's energy."""
    root = write_demo_corpus(tmp_path, n_files=6, seed=2)
    calls = pd.read_csv(root / "data" / "calls.csv")
    assert list(calls.columns)[:6] == ["File Name", "call_index", "start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz"]
    assert set(calls.species) == set(CALL_TYPES) and set(calls.event) == {"Echolocation"}
    names = pd.read_csv(root / "data" / "annotations.csv")["File Name"]
    assert set(calls["File Name"]) == set(names)
    for name, boxes in calls.groupby("File Name"):
        samples, sample_rate = sf.read(root / "data" / "audio" / name, dtype="float32")
        spans = [(round(b.start_time_s * sample_rate), round(b.end_time_s * sample_rate)) for b in boxes.itertuples()]
        inside = np.zeros(len(samples), dtype=bool)
        for start, end in spans:
            inside[start:end] = True
        noise_rms = np.sqrt(np.mean(samples[~inside] ** 2))
        assert (np.abs(samples[~inside]) > 0.05).sum() == 0, name  # 10 sigma of the loudest noise; calls peak at 0.15-0.5
        assert np.mean(samples[inside] ** 2) > 100 * noise_rms**2
        half_ms = int(sample_rate / 2000)
        moving_rms = np.sqrt(np.convolve(samples.astype(np.float64) ** 2, np.ones(half_ms) / half_ms, mode="same"))
        for box, (start, end) in zip(boxes.itertuples(), spans):
            above = np.flatnonzero(moving_rms[start:end] > 3 * noise_rms)  # the call, then its fainter echo
            assert above[0] < 0.3 * (end - start) and above[-1] > 0.7 * (end - start), (name, box.call_index)
            after = moving_rms[end + half_ms:end + 4 * half_ms]  # nothing of the call (nor its echo) past the box
            assert (after < 3 * noise_rms).all(), (name, box.call_index)
            segment = samples[start:end].astype(np.float64)
            power = np.abs(np.fft.rfft(segment)) ** 2
            freqs = np.fft.rfftfreq(len(segment), 1 / sample_rate)
            in_band = (freqs >= 0.9 * box.low_freq_hz) & (freqs <= 1.1 * box.high_freq_hz)
            assert power[in_band].sum() > 0.95 * power.sum(), (name, box.call_index)
