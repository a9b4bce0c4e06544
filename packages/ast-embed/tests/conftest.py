from pathlib import Path

import numpy as np
import pytest

from bat_core.pytest_fixtures import demo_root, demo_template  # noqa: F401
from bat_core.testing import make_tiny_ast, make_tiny_speech_encoder

RATE = 250_000


@pytest.fixture(scope="session")
def tiny_ast(tmp_path_factory) -> Path:
    """A tiny random AST (trained length 128 frames, 32 mel bins) saved with save_pretrained."""
    return make_tiny_ast(tmp_path_factory.mktemp("tiny_ast"))


@pytest.fixture(scope="session")
def other_tiny_ast(tmp_path_factory) -> Path:
    """The same architecture as ``tiny_ast`` with other random weights (seed 1)."""
    return make_tiny_ast(tmp_path_factory.mktemp("other_tiny_ast"), seed=1)


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    """A model folder of the wrong architecture for this package."""
    return make_tiny_speech_encoder(tmp_path_factory.mktemp("tiny_wav2vec2"))


def make_clip(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """A downward FM sweep (60 -> 40 kHz) in a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (60_000 - 20_000 * t / max(seconds, 1e-9)) * t)
            + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="session")
def clip():
    """``clip(seconds, seed=0, rate=250_000)``: a bat-like sweep."""
    return make_clip
