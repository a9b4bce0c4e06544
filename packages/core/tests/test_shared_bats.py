"""The real recordings in shared/bats: read-only, outputs to a temp dir."""

import json

import numpy as np

from bat_core.check import check_dataset
from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, compute_mels
from bat_core.runner import RunOptions
from bat_core.store import read_manifest
from bat_core.testing import require_shared_bats


def test_every_real_recording_is_readable_and_the_band_survives(tmp_path):
    root = require_shared_bats()
    dataset = Dataset.from_root(root, derived=tmp_path / "derived")
    assert len(dataset) == 91 and not dataset.missing()
    report = check_dataset(dataset, RunOptions(workers=2, show_progress=False))
    assert not report.problems, report.text()
    assert {f.sample_rate for f in report.files} >= {192_000, 250_000, 500_000}


def test_mels_for_every_real_recording(tmp_path):
    root = require_shared_bats()
    dataset = Dataset.from_root(root, derived=tmp_path / "derived")
    summary = compute_mels(dataset, MelConfig(), options=RunOptions(workers=2, show_progress=False))
    assert (summary.done, summary.failed) == (91, 0)
    manifest = read_manifest(dataset.paths.manifest_path("mels_48k"))
    assert len(manifest) == 91 and set(manifest.status) == {"ok"}
    assert set(manifest.time_expansion) == {5.0}
    for row in manifest.itertuples():
        mel = np.load(dataset.paths.derived / row.output_path)
        assert list(mel.shape) == json.loads(row.shape) and np.isfinite(mel).all()
    assert not (root / "derived").exists(), "nothing written into shared/"


def test_call_boxes_of_every_real_recording_hold_their_peak(tmp_path):
    """On the real recordings (before: 5 zero-width boxes, 15% of peaks outside their box): every box is at least
    one FFT bin wide and holds its peak frequency."""
    from bat_core.segments.command import segment_project
    from bat_core.segments.table import read_boxes

    root = require_shared_bats()
    summary = segment_project(Dataset.from_root(root, derived=tmp_path / "derived"),
                              options=RunOptions(workers=0, show_progress=False))
    assert (summary.run.done, summary.run.failed) == (91, 0) and summary.n_calls > 100
    boxes = read_boxes(summary.table_path)
    assert (boxes.high_freq_hz - boxes.low_freq_hz >= 999).all()  # a bin is 1-1.01 kHz (1 ms frames)
    assert boxes.peak_freq_hz.between(boxes.low_freq_hz, boxes.high_freq_hz).all()
    assert not (root / "derived").exists(), "nothing written into shared/"
