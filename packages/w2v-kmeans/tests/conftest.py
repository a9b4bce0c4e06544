import shutil
from pathlib import Path

import pytest

from bat_core.testing import make_demo_project, make_tiny_speech_encoder


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    return make_tiny_speech_encoder(tmp_path_factory.mktemp("tiny_w2v"), "wav2vec2")


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory) -> Path:
    return make_tiny_speech_encoder(tmp_path_factory.mktemp("tiny_hubert"), "hubert")


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    return make_demo_project(tmp_path_factory.mktemp("w2v_demo"), n_files=6)


@pytest.fixture
def demo_root(demo_template, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(demo_template / "data", root / "data")
    return root
