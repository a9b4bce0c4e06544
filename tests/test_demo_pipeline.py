"""README's main job through the CLIs, as tools/demo.sh runs it, into a temp dir."""

import subprocess
import sys
from pathlib import Path

import pandas as pd


def bat_core(*args: str) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).parent / "bat-core"
    return subprocess.run([str(cli), *args], capture_output=True, text=True, check=False)


def test_demo_check_mels(tmp_path):
    project = tmp_path / "demo_project"
    assert bat_core("demo", str(project)).returncode == 0
    check = bat_core("check", "--root", str(project), "-q")
    assert check.returncode == 0, check.stderr
    assert "files: 24 (24 readable, 0 unreadable)" in check.stdout
    mels = bat_core("mels", "--root", str(project), "-q")
    assert mels.returncode == 0, mels.stderr
    manifest = pd.read_parquet(project / "derived" / "manifests" / "mels_48k.parquet")
    assert len(manifest) == 24 and set(manifest.status) == {"ok"}
