import time

import pytest

from bat_core.errors import ModelNotFoundError
from bat_core.pretrained import load_pretrained


def test_local_folder_is_loaded_without_the_hub(tmp_path):
    calls = []

    def load(name, local_files_only=False):
        calls.append((name, local_files_only))
        return "model"

    assert load_pretrained(load, str(tmp_path)) == "model"
    assert calls == [(str(tmp_path), True)]


def test_offline_unknown_name_fails_fast_naming_the_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def load(name, local_files_only=False):
        raise OSError(f"Can't load {name}")

    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=r"not in the local Hugging Face cache.*--model PATH"):
        load_pretrained(load, "facebook/wav2vec2-base", "encoder")
    assert time.perf_counter() - started < 5


def test_incomplete_local_folder(tmp_path):
    def load(name, local_files_only=False):
        raise OSError("no config.json")

    with pytest.raises(ModelNotFoundError, match="exists but is not a usable model checkpoint.*--model PATH"):
        load_pretrained(load, str(tmp_path))
