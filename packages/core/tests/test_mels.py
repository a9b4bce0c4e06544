import json

import numpy as np
import pytest

from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, compute_mels, log_mel
from bat_core.runner import RunOptions
from bat_core.store import read_manifest
from bat_core.testing import add_bad_files
from bat_core.time_expansion import TimeExpansion

SMALL = MelConfig(n_mels=32)
INLINE = RunOptions(workers=0, show_progress=False)


def test_mels_in_seed_layout_with_provenance(demo_root):
    dataset = Dataset.from_root(demo_root)
    summary = compute_mels(dataset, SMALL, options=INLINE)
    assert (summary.done, summary.failed) == (6, 0)
    assert SMALL.representation.startswith("mels_48k-") and MelConfig().representation == "mels_48k"
    mels_dir = demo_root / "derived" / SMALL.representation
    for item in dataset:
        mel = np.load(mels_dir / f"{item.stem}.npy")
        assert mel.dtype == np.float32 and mel.shape[0] == 32 and np.isfinite(mel).all()
    params = json.loads((mels_dir / "params.json").read_text())
    assert params["n_mels"] == 32 and params["time_expansion"]["factor"] is None
    manifest = read_manifest(dataset.paths.manifest_path(SMALL.representation))
    row = manifest.iloc[0]
    assert row.time_expansion == 5.0 and row.target_sample_rate == 48_000
    # frames per second of ORIGINAL audio: 48 kHz * 5 / hop
    assert row.frames_per_second == pytest.approx(48_000 * 5 / 256)
    frames = json.loads(row["shape"])[1]
    assert frames == pytest.approx(row.seconds * row.frames_per_second, abs=2)


def test_calls_are_in_the_mel_band(demo_root):
    """A CF-FM call at ~80 kHz must show up, not be resampled away."""
    dataset = Dataset.from_root(demo_root).select({"call_type": "CF-FM"}, limit=1)
    compute_mels(dataset, MelConfig(), options=INLINE)
    mel = np.load(dataset.paths.derived / "mels_48k" / f"{dataset[0].stem}.npy")
    loudest_band_hz = np.linspace(500, 24_000, 128)[np.argmax(mel.max(axis=1))] * 5  # rough mel->Hz, x5 expansion
    assert 55_000 < loudest_band_hz < 110_000


def test_recomputed_only_when_parameters_or_files_change(demo_root):
    dataset = Dataset.from_root(demo_root)
    compute_mels(dataset, SMALL, options=INLINE)
    assert compute_mels(dataset, SMALL, options=INLINE).skipped == 6
    dataset[0].path.write_bytes(dataset[0].path.read_bytes())  # touch: new mtime
    assert compute_mels(dataset, SMALL, options=INLINE).done == 1
    assert compute_mels(dataset, MelConfig(n_mels=40), options=INLINE).done == 6
    assert compute_mels(dataset, MelConfig(n_mels=40), overwrite=True, options=INLINE).done == 6
    assert compute_mels(dataset, SMALL, options=INLINE).skipped == 6  # configurations live side by side


def test_bad_files_become_failed_rows_and_the_rest_is_done(demo_root):
    expected = add_bad_files(demo_root)
    dataset = Dataset.from_root(demo_root)
    summary = compute_mels(dataset, SMALL, options=RunOptions(workers=2, show_progress=False))
    assert summary.given == len(dataset) == 7 + len(expected)
    assert summary.done == 7 and summary.failed == len(expected)  # six demo files + the stereo one
    reasons = dict(summary.failures)
    for name, text in expected.items():
        assert text in reasons[name]
    manifest = read_manifest(dataset.paths.manifest_path(SMALL.representation))
    assert len(manifest) == 7 + len(expected)


def test_explicit_time_expansion_is_recorded(demo_root):
    dataset = Dataset.from_root(demo_root).select(limit=1)
    config = MelConfig(n_mels=32, time_expansion=TimeExpansion.parse("10"))
    compute_mels(dataset, config, options=INLINE)
    row = read_manifest(dataset.paths.manifest_path(config.representation)).iloc[0]
    assert row.time_expansion == 10.0


def test_log_mel_rejects_bad_parameters():
    with pytest.raises(ValueError):
        MelConfig(fmin=30_000)
    mel = log_mel(np.zeros(4800, np.float32), SMALL)
    assert np.isfinite(mel).all()


def test_streamed_mels_equal_librosa_on_a_whole_minute(tmp_path):
    """A 60 s recording streamed in blocks through the runner gives librosa's whole-file log-mel (1e-3 dB)."""
    librosa = pytest.importorskip("librosa")
    import soundfile as sf

    from bat_core.testing import write_project
    from bat_core.time_expansion import convert_for_model

    rate = 256_000
    rng = np.random.default_rng(0)
    signal = (0.01 * rng.standard_normal(60 * rate)).astype(np.float32)
    signal[rate:rate + 2000] += np.sin(2 * np.pi * 50_000 * np.arange(2000) / rate).astype(np.float32)
    root = write_project(tmp_path / "p", {"minute.wav": (signal, rate)})
    dataset = Dataset.from_root(root)
    config = MelConfig()
    assert compute_mels(dataset, config, options=RunOptions(workers=1, show_progress=False)).done == 1
    streamed = np.load(dataset.paths.derived / "mels_48k" / "minute.npy")
    converted, _ = convert_for_model(sf.read(root / "data" / "audio" / "minute.wav", dtype="float32")[0], rate, 48_000,
                                     config.time_expansion)
    power = librosa.feature.melspectrogram(y=converted, sr=48_000, n_fft=1024, hop_length=256, n_mels=128, fmin=500.0,
                                           power=2.0)
    reference = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    assert streamed.shape == reference.shape
    np.testing.assert_allclose(streamed, reference, atol=1e-3)
