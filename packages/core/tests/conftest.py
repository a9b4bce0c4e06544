from pathlib import Path

import pytest

from bat_core.testing import make_demo_project


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """One demo corpus per session; tests copy it before changing anything."""
    return make_demo_project(tmp_path_factory.mktemp("demo_template"), n_files=6)


@pytest.fixture
def demo_root(demo_template, tmp_path) -> Path:
    import shutil

    root = tmp_path / "project"
    shutil.copytree(demo_template / "data", root / "data")
    return root
