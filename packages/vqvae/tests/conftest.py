import shutil
from pathlib import Path

import pytest

from bat_core.testing import make_demo_project


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    return make_demo_project(tmp_path_factory.mktemp("vq_demo"), n_files=6)


@pytest.fixture
def demo_root(demo_template, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(demo_template / "data", root / "data")
    return root
