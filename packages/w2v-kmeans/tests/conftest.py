from pathlib import Path

import pytest

from bat_core.pytest_fixtures import demo_root, demo_template  # noqa: F401
from bat_core.testing import make_tiny_speech_encoder


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    return make_tiny_speech_encoder(tmp_path_factory.mktemp("tiny_w2v"), "wav2vec2")


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory) -> Path:
    return make_tiny_speech_encoder(tmp_path_factory.mktemp("tiny_hubert"), "hubert")
