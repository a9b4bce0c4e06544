import shutil
from pathlib import Path

import pytest

from bat_core.testing import make_demo_project, make_tiny_ast


@pytest.fixture(scope="session")
def tiny_ast(tmp_path_factory) -> Path:
    """A tiny random AST (trained length 128 frames, 32 mel bins) saved with save_pretrained."""
    return make_tiny_ast(tmp_path_factory.mktemp("tiny_ast"))


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    return make_demo_project(tmp_path_factory.mktemp("ast_demo"), n_files=6)


@pytest.fixture
def demo_root(demo_template, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(demo_template / "data", root / "data")
    return root
