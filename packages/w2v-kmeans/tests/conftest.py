from pathlib import Path

import numpy as np
import pytest

from bat_core.pytest_fixtures import demo_root, demo_template  # noqa: F401
from bat_core.testing import make_tiny_speech_encoder, write_project

RATE = 250_000  # auto time expansion for a 16 kHz encoder: x15


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    return make_tiny_speech_encoder(tmp_path_factory.mktemp("tiny_w2v"), "wav2vec2")


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory) -> Path:
    return make_tiny_speech_encoder(tmp_path_factory.mktemp("tiny_hubert"), "hubert")


def calls(seconds: float, seed: int) -> np.ndarray:
    """Noise with a few 40-60 kHz sweeps: cheap recordings that still give the encoder something to see."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    samples = 0.01 * rng.standard_normal(n)
    for start in rng.integers(0, max(1, n - RATE // 100), size=3):
        t = np.arange(RATE // 100) / RATE
        samples[start:start + len(t)] += 0.4 * np.sin(2 * np.pi * (60_000 - 2_000_000 * t) * t)[: n - start]
    return samples.astype(np.float32)


def short_project(root: Path, count: int = 8, seconds: float = 0.2) -> Path:
    """``count`` short recordings at 250 kHz (each ~``seconds`` s: ~15x that of model audio)."""
    return write_project(root, {f"rec_{i}.wav": (calls(seconds * (1 + 0.25 * (i % 3)), i), RATE) for i in range(count)})


@pytest.fixture
def short_root(tmp_path) -> Path:
    return short_project(tmp_path / "short")


@pytest.fixture
def make_short_project():
    return short_project
