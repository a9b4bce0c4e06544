"""pytest fixtures every package's tests share; import them into a tests/conftest.py:

    from bat_core.pytest_fixtures import demo_root, demo_template  # noqa: F401
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bat_core.testing import make_demo_project


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """One six-file demo corpus per session (read-only by convention)."""
    return make_demo_project(tmp_path_factory.mktemp("demo_template"), n_files=6)


@pytest.fixture
def demo_root(demo_template, tmp_path) -> Path:
    """A fresh copy of the demo corpus that a test may change."""
    root = tmp_path / "project"
    shutil.copytree(demo_template / "data", root / "data")
    return root
