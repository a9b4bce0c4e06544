import hashlib

import numpy as np

from bat_core.audio import load_audio
from bat_core.dataset import Dataset
from bat_core.demo import CALL_TYPES, write_demo_corpus


def digest(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "data").rglob("*.*"))}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = write_demo_corpus(tmp_path / "a", n_files=6, seed=3)
    b = write_demo_corpus(tmp_path / "b", n_files=6, seed=3)
    c = write_demo_corpus(tmp_path / "c", n_files=6, seed=4)
    assert digest(a) == digest(b) != digest(c)


def test_corpus_is_labelled_varied_and_mostly_silent(tmp_path):
    dataset = Dataset.from_root(write_demo_corpus(tmp_path, n_files=12))
    assert set(dataset.labels("call_type")) == set(CALL_TYPES)
    assert len(set(dataset.labels("site"))) == 4
    rates = set()
    for item in dataset:
        recording = load_audio(item.path)
        rates.add(recording.sample_rate)
        assert 0.3 <= recording.seconds <= 1.0
        loud = np.abs(recording.samples) > 0.05
        assert 0.001 < loud.mean() < 0.5, "calls present, silence dominant"
    assert rates == {192_000, 250_000, 256_000, 384_000}
