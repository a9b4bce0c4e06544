"""``bat-core segment --detector batdetect2``: the optional trained detector behind bat-core[batdetect2].

Most tests need batdetect2 (installed with ``pip install --no-deps batdetect2==1.3.1`` after the extra) and
skip without it; the missing-extra message is tested everywhere.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from bat_core.testing import write_project

REPO = Path(__file__).resolve().parents[3]
CALLS_CSV_FILES = ("20170701_213954-MYOMYS-LR_0_0.5.wav", "20180530_213516-EPTSER-LR_0_0.5.wav",
                   "20180627_215323-RHIFER-LR_0_0.5.wav")


def _cli(*args: str, env_code: str = "") -> subprocess.CompletedProcess:
    code = f"import sys; {env_code}from bat_core.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "segment", *args], capture_output=True, text=True)


def _noise_project(root: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_project(root, {"noise.wav": ((0.01 * rng.standard_normal(96_000)).astype(np.float32), 384_000)})


# -- without batdetect2 ---------------------------------------------------------------------------------------

def test_a_missing_extra_is_one_line_with_the_two_step_install_and_exit_2(tmp_path):
    """Whatever is installed: importing batdetect2 (or torch) is made to fail, the run stops before any file."""
    root = _noise_project(tmp_path / "project")
    block = ("import importlib.util as u; real = u.find_spec; "
             "u.find_spec = lambda name, *a: None if name in ('batdetect2', 'torch') else real(name, *a); ")
    result = _cli("--root", str(root), "--detector", "batdetect2", "-q", "--num-workers", "0", env_code=block)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "pip install 'bat-core[batdetect2]'" in lines[0] and "pip install --no-deps batdetect2==1.3.1" in lines[0]
    assert not (root / "derived" / "manifests").exists() or not any((root / "derived" / "manifests").glob("segments_batdetect2*"))


def test_the_no_deps_requirement_is_spelled_once_for_code_and_install():
    from bat_core.segments.batdetect2 import REQUIREMENT

    pyproject = tomllib.loads((REPO / "packages" / "core" / "pyproject.toml").read_text())
    assert pyproject["tool"]["bat-tokenizers"]["no-deps"] == [REQUIREMENT]
    assert not any(name.startswith(("torchaudio", "torchvision", "batdetect2"))
                   for name in pyproject["project"]["optional-dependencies"]["batdetect2"])


def test_cli_help_lists_the_detector_without_importing_torch():
    code = ("import sys\nfrom bat_core.cli import main\ntry:\n    main(['segment', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "--detector {band_energy,batdetect2}" in result.stdout and "--detection-threshold" in result.stdout
    assert result.stdout.strip().endswith("False")


# -- with batdetect2 ------------------------------------------------------------------------------------------

def _require_batdetect2() -> None:
    pytest.importorskip("batdetect2", reason="batdetect2 not installed: pip install 'bat-core[batdetect2]' && "
                                             "pip install --no-deps batdetect2==1.3.1")
    pytest.importorskip("torch", reason="torch not installed (bat-core[batdetect2] needs it)")


def test_torch_keeps_the_repository_pin_and_batdetect2_api_imports():
    _require_batdetect2()
    import torch

    pin_file = REPO / "pyproject.toml"
    if not pin_file.is_file():
        pytest.skip("the repository's pyproject.toml (the torch pin) is not beside this installed package")
    (pin,) = [r for r in tomllib.loads(pin_file.read_text())["dependency-groups"]["torch"] if r.startswith("torch==")]
    assert torch.__version__.split("+")[0] == pin.split("==")[1], "installing batdetect2 replaced the torch pin"
    import batdetect2.api

    assert hasattr(batdetect2.api, "process_file")
    assert "torchaudio" not in sys.modules and "torchvision" not in sys.modules, "batdetect2.api must not need them"


def _crash_project(root: Path) -> dict[str, str]:
    """The inputs batdetect2's issues report crashes on, and the reason each failed row must give."""
    rng = np.random.default_rng(2)
    recordings = {
        "empty.wav": (np.zeros(0, dtype=np.float32), 384_000),
        "short_2ms.wav": ((0.01 * rng.standard_normal(768)).astype(np.float32), 384_000),
        "rate_500k.wav": ((0.01 * rng.standard_normal(250_000)).astype(np.float32), 500_000),
    }
    write_project(root, recordings)
    return {"empty.wav": "empty", "short_2ms.wav": "too short for batdetect2"}


def test_crash_inputs_become_failed_rows_and_500k_runs(tmp_path):
    _require_batdetect2()
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.segments.batdetect2 import Batdetect2Detector
    from bat_core.segments.command import segment_project
    from bat_core.testing import add_bad_files

    root = tmp_path / "project"
    expected = _crash_project(root)
    expected.update({name: text for name, text in add_bad_files(root).items() if name != "bad_noframes.wav"})
    summary = segment_project(Dataset.from_root(root), Batdetect2Detector(), options=RunOptions(workers=1, show_progress=False))
    reasons = dict(summary.run.failures)
    assert set(reasons) == set(expected) | {"bad_noframes.wav"}, reasons
    for name, text in expected.items():
        assert text in reasons[name], (name, reasons[name])
    assert summary.run.done == 2 and summary.run.accounted  # the 500 kHz file and the stereo one


def test_a_batdetect2_exception_is_a_failed_row_not_a_crash(tmp_path, monkeypatch):
    _require_batdetect2()
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.segments import batdetect2 as wrapper
    from bat_core.segments.command import segment_project

    api = wrapper.batdetect2_api()

    def broken(*args, **kwargs):
        raise RuntimeError("Sizes of tensors must match")

    monkeypatch.setattr(api, "process_file", broken)
    root = _noise_project(tmp_path / "project")
    summary = segment_project(Dataset.from_root(root), wrapper.Batdetect2Detector(), options=RunOptions(workers=0, show_progress=False))
    (name, reason), = summary.run.failures
    assert name == "noise.wav" and "batdetect2 failed" in reason and "Sizes of tensors must match" in reason


def test_shared_bats_agree_with_batdetect2s_own_calls_and_sit_beside_band_energy(tmp_path, capsys):
    _require_batdetect2()
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.segments.batdetect2 import LICENCE_LINE, Batdetect2Detector
    from bat_core.segments.command import segment_project
    from bat_core.segments.scoring import score_detections
    from bat_core.segments.table import SEGMENT_COLUMNS, read_boxes
    from bat_core.testing import require_shared_bats

    shared = require_shared_bats()
    everything = Dataset.from_root(shared, derived=tmp_path / "derived")
    dataset = Dataset(everything.paths, [item for item in everything if item.file_name in CALLS_CSV_FILES],
                      everything.label_columns)
    assert len(dataset) == 3
    options = RunOptions(workers=0, show_progress=False)
    band = segment_project(dataset, options=options)
    before = band.table_path.read_bytes()
    summary = segment_project(dataset, Batdetect2Detector(), options=options)
    assert capsys.readouterr().out.count(LICENCE_LINE) == 1
    assert (summary.run.done, summary.run.failed) == (3, 0)
    assert summary.table_path.parent == band.table_path.parent and summary.table_path.name.startswith("batdetect2-")
    assert band.table_path.read_bytes() == before, "the band-energy table is left as it was"
    detections = read_boxes(summary.table_path)
    assert list(detections.columns) == list(SEGMENT_COLUMNS)
    assert detections.peak_freq_hz.isna().all() and (detections.score >= 0.3).all()
    assert set(detections.detector) == {"batdetect2"}
    reference = read_boxes(shared / "calls.csv")
    scores = score_detections(detections, reference, files=list(CALLS_CSV_FILES))
    assert scores.onset.f1 >= 0.9 and scores.iou.f1 >= 0.9, scores.line()  # measured: 1.0 and 1.0, 44 of 44
    assert not (shared / "derived").exists(), "nothing written into shared/"
