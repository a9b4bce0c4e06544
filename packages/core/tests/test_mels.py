import json

import numpy as np
import pytest

from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, compute_mels, log_mel
from bat_core.store import read_manifest
from bat_core.testing import add_bad_files
from bat_core.time_expansion import TimeExpansion

SMALL = MelConfig(n_mels=32)


def test_mels_in_seed_layout_with_provenance(demo_root):
    dataset = Dataset.from_root(demo_root)
    summary = compute_mels(dataset, SMALL, show_progress=False)
    assert (summary.done, summary.failed) == (6, 0)
    mels_dir = demo_root / "derived" / "mels_48k"
    for item in dataset:
        mel = np.load(mels_dir / f"{item.stem}.npy")
        assert mel.dtype == np.float32 and mel.shape[0] == 32 and np.isfinite(mel).all()
    params = json.loads((mels_dir / "params.json").read_text())
    assert params["n_mels"] == 32 and params["time_expansion"]["factor"] is None
    manifest = read_manifest(dataset.paths.manifest_path("mels_48k"))
    row = manifest.iloc[0]
    assert row.time_expansion == 5.0 and row.target_sample_rate == 48_000
    # frames per second of ORIGINAL audio: 48 kHz * 5 / hop
    assert row.frames_per_second == pytest.approx(48_000 * 5 / 256)
    frames = json.loads(row["shape"])[1]
    assert frames == pytest.approx(row.seconds * row.frames_per_second, abs=2)


def test_calls_are_in_the_mel_band(demo_root):
    """A CF-FM call at ~80 kHz must show up, not be resampled away."""
    dataset = Dataset.from_root(demo_root).select({"call_type": "CF-FM"}, limit=1)
    compute_mels(dataset, MelConfig(), show_progress=False)
    mel = np.load(dataset.paths.mels_dir() / f"{dataset[0].stem}.npy")
    loudest_band_hz = np.linspace(500, 24_000, 128)[np.argmax(mel.max(axis=1))] * 5  # rough mel->Hz, x5 expansion
    assert 55_000 < loudest_band_hz < 110_000


def test_recomputed_only_when_parameters_or_files_change(demo_root):
    dataset = Dataset.from_root(demo_root)
    compute_mels(dataset, SMALL, show_progress=False)
    assert compute_mels(dataset, SMALL, show_progress=False).skipped == 6
    dataset[0].path.write_bytes(dataset[0].path.read_bytes())  # touch: new mtime
    assert compute_mels(dataset, SMALL, show_progress=False).done == 1
    assert compute_mels(dataset, MelConfig(n_mels=40), show_progress=False).done == 6
    assert compute_mels(dataset, MelConfig(n_mels=40), overwrite=True, show_progress=False).done == 6


def test_bad_files_become_failed_rows_and_the_rest_is_done(demo_root):
    expected = add_bad_files(demo_root)
    dataset = Dataset.from_root(demo_root)
    summary = compute_mels(dataset, SMALL, num_workers=2, show_progress=False)
    assert summary.given == len(dataset) == 12
    assert summary.done == 7 and summary.failed == 5  # six demo files + the stereo one
    reasons = dict(summary.failures)
    for name, text in expected.items():
        assert text in reasons[name]
    manifest = read_manifest(dataset.paths.manifest_path("mels_48k"))
    assert len(manifest) == 12


def test_explicit_time_expansion_is_recorded(demo_root):
    dataset = Dataset.from_root(demo_root).select(limit=1)
    compute_mels(dataset, MelConfig(n_mels=32, time_expansion=TimeExpansion.parse("10")), show_progress=False)
    row = read_manifest(dataset.paths.manifest_path("mels_48k")).iloc[0]
    assert row.time_expansion == 10.0


def test_log_mel_rejects_bad_parameters():
    with pytest.raises(ValueError):
        MelConfig(fmin=30_000)
    mel = log_mel(np.zeros(4800, np.float32), SMALL)
    assert np.isfinite(mel).all()
