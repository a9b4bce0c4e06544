from bat_core.check import check_dataset
from bat_core.dataset import Dataset
from bat_core.runner import RunOptions
from bat_core.testing import add_bad_files


def test_report_counts_rates_notes_and_problems(demo_root):
    expected = add_bad_files(demo_root)
    report = check_dataset(Dataset.from_root(demo_root), RunOptions(workers=2, show_progress=False))
    assert len(report.files) == 7 + len(expected)
    assert {f.file_name for f in report.problems} == set(expected)
    text = report.text()
    assert f"files: {7 + len(expected)} (7 readable, {len(expected)} unreadable)" in text
    assert "192 kHz x" in text and "250 kHz x" in text
    assert "ok_stereo.wav: 2 channels (mixed to mono)" in text
    assert "covers 77% of the bat band" in text  # the 192 kHz files
    by_name = {f.file_name: f for f in report.files}
    cf = next(f for n, f in by_name.items() if "cffm_250k" in n)
    assert cf.band_covered_fraction == 1.0 and cf.band_energy_fraction > 0.9
