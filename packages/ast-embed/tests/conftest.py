from pathlib import Path

import pytest

from bat_core.pytest_fixtures import demo_root, demo_template  # noqa: F401
from bat_core.testing import make_tiny_ast


@pytest.fixture(scope="session")
def tiny_ast(tmp_path_factory) -> Path:
    """A tiny random AST (trained length 128 frames, 32 mel bins) saved with save_pretrained."""
    return make_tiny_ast(tmp_path_factory.mktemp("tiny_ast"))
