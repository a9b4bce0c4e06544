"""Every installed strategy, then the evaluation report, on the real recordings in shared/bats.

Outputs go to a temporary --derived folder; shared/ is never written. Encoders are tiny with
random weights (no pretrained checkpoint can be downloaded here): this checks the plumbing and
the report's invariants on real 192-500 kHz data, not the quality of the representations.
"""

import importlib.util
import json

import numpy as np

from bat_core.dataset import Dataset
from bat_core.evaluate import evaluate_project
from bat_core.runner import RunOptions
from bat_core.store import read_manifest
from bat_core.testing import make_tiny_ast, make_tiny_speech_encoder, require_shared_bats

QUIET = RunOptions(workers=2, show_progress=False)
INSTALLED = {name: importlib.util.find_spec(name) is not None for name in ("bat_vqvae", "bat_w2v_kmeans", "bat_ast_embed")}


def run_strategies(dataset, tmp_path) -> list[str]:
    ran = []
    if INSTALLED["bat_vqvae"]:
        from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, encode_dataset, train

        train(dataset, tmp_path / "vq", VQVAEConfig(hidden=16, codes=32, code_dim=8),
              TrainConfig(steps=20, batch_size=4, crop_frames=64, checkpoint_every=20, kmeans_init_vectors=2000),
              device="cpu", options=QUIET)
        encode_dataset(dataset, VQVAETokenizer.from_pretrained(tmp_path / "vq"), "tiny", options=QUIET)
        ran.append("vqvae")
    if INSTALLED["bat_w2v_kmeans"]:
        from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer, encode_dataset

        tokenizer = W2VKMeansTokenizer(SpeechEncoder.from_pretrained(make_tiny_speech_encoder(tmp_path / "w2v"), device="cpu"))
        tokenizer.fit(dataset, k=16, max_fit_frames=5000, options=QUIET)
        encode_dataset(dataset, tokenizer, options=QUIET)
        ran.append("w2v_kmeans")
    if INSTALLED["bat_ast_embed"]:
        from bat_ast_embed import ASTEmbedder, EmbedConfig, embed_dataset

        embedder = ASTEmbedder.from_pretrained(make_tiny_ast(tmp_path / "ast"), EmbedConfig(max_frames="auto"), device="cpu")
        embed_dataset(dataset, embedder, options=QUIET)
        ran.append("ast")
    return ran


def test_every_strategy_and_the_report_on_real_recordings(tmp_path):
    root = require_shared_bats()
    dataset = Dataset.from_root(root, derived=tmp_path / "derived")
    ran = run_strategies(dataset, tmp_path)
    report = evaluate_project(dataset, "call_type", options=QUIET, notes=["tiny random-weight encoders"])
    data = json.loads(report.json.read_text())
    rows = {row["name"]: row for row in data["rows"]}
    assert set(ran) | {"majority", "mfcc_kmeans", "mean_log_mel"} == set(rows)
    for name in ran:  # every file accounted for, in the manifest and in the report
        manifest = read_manifest(dataset.paths.manifest_path(name))
        assert len(manifest) == len(dataset) == 91
        assert rows[name]["files_ok"] + rows[name]["files_failed"] == 91
        assert set(manifest.time_expansion.dropna()) <= {5.0, 15.0}, "ultrasound reached every model time-expanded"
    for row in data["rows"]:
        for key in ("probe_accuracy", "probe_macro_f1", "nmi", "purity"):
            assert 0 <= row[key] <= 1, (row["name"], key)
        assert row["probe_accuracy_std"] >= 0
        if row["kind"] == "tokens":
            assert 1 <= row["perplexity"] <= row["codebook_size"] and 0 < row["codes_used"] <= row["codebook_size"]
            assert row["tokens_per_second"] > 0 and row["mean_run_length"] >= 1
    assert all(f.is_file() and f.stat().st_size > 1000 for f in report.figures)
    assert sum(f.name.startswith("example_") for f in report.figures) == 3
    assert "tiny random-weight encoders" in report.markdown.read_text()
    assert not (root / "derived").exists()
    assert np.isfinite([rows["mean_log_mel"]["probe_accuracy"]]).all()
