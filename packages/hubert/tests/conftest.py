import pytest

from bat_core.pytest_fixtures import demo_root, demo_template  # noqa: F401


@pytest.fixture
def tiny() -> list[str]:
    """``pretrain`` options for a model small enough for CI: the whole run on the demo corpus in seconds."""
    return ["--layers", "2", "--hidden-size", "32", "--heads", "2", "--intermediate-size", "64", "--conv-channels",
            "16", "--clusters", "8", "12", "--epochs", "2", "--min-steps", "0", "--frontend-steps", "10", "--num-workers", "0", "-q"]
