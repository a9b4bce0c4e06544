"""A bat-hubert encoder is a model bat-w2v-kmeans loads as it is (the two packages meet only here)."""

import pandas as pd

from bat_core.testing import make_demo_project
from bat_hubert.cli import main as bat_hubert
from bat_w2v_kmeans.cli import main as bat_w2v_kmeans

TINY = ["--layers", "2", "--hidden-size", "32", "--heads", "2", "--intermediate-size", "64", "--conv-channels", "16",
        "--clusters", "8", "12", "--epochs", "1", "--min-steps", "0", "--frontend-steps", "10", "--num-workers", "0", "-q"]


def test_w2v_kmeans_tokenizes_the_demo_corpus_with_a_bat_hubert_encoder(tmp_path):
    root = make_demo_project(tmp_path / "demo", n_files=6)
    model = tmp_path / "bat_hubert"
    assert bat_hubert(["pretrain", "--root", str(root), "--model", str(model), *TINY]) == 0
    assert bat_w2v_kmeans(["run", "--root", str(root), "--model", str(model), "--layer", "1", "--k", "8",
                           "--num-workers", "0", "-q"]) == 0
    manifest = pd.read_parquet(root / "derived" / "manifests" / "w2v_kmeans.parquet")
    assert len(manifest) == 6 and set(manifest.status) == {"ok"}
