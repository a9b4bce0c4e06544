"""Codebook usage over long training on a small corpus (issue 16: "a test on a small corpus that trains long
enough to have collapsed before").

The codes have the default's dimension (128): at that dimension the collapse shows within a few hundred steps.
Measured on the six-file demo corpus, 300 steps of batch 8 (2,400 crops), usage over every file's codes:
- with the dead-code restart (today): 100% of 256 codes;
- restart disabled (``dead_code_share=0``): 48%; round 1's decay of 0.99, restart disabled: 28%.
Small codes (dimension 8) never collapse here, with or without restart: a test at that size could not fail.
"""

import csv
import shutil

import pytest

from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, load_mels
from bat_core.metrics import code_counts, usage
from bat_core.runner import RunOptions
from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, train

MEL = MelConfig(n_mels=32)
MODEL = VQVAEConfig(n_mels=32, hidden=16, codes=256)  # code_dim: the default's 128
LONG = TrainConfig(steps=300, batch_size=8, crop_frames=32, checkpoint_every=300, log_every=50,
                   kmeans_init_vectors=2048, kmeans_iters=10, holdout_fraction=0.2)
INLINE = RunOptions(workers=0, show_progress=False)


@pytest.fixture(scope="module")
def long_trained(demo_template, tmp_path_factory):
    root = tmp_path_factory.mktemp("long") / "project"
    shutil.copytree(demo_template / "data", root / "data")
    dataset = Dataset.from_root(root)
    model_dir = root / "model"
    train(dataset, model_dir, MODEL, LONG, MEL, device="cpu", options=INLINE)
    return dataset, model_dir


def test_the_codebook_stays_in_use_over_long_training(long_trained):
    dataset, model_dir = long_trained
    tokenizer = VQVAETokenizer.from_pretrained(model_dir)
    mels = load_mels(dataset, MEL, options=INLINE)
    counts = code_counts([tokenizer.encode(mel) for mel in mels.values()], MODEL.codes)
    assert usage(counts) >= 0.9, f"{usage(counts):.1%} of the codes in use after {LONG.steps} steps"


def test_the_log_shows_usage_and_perplexity_over_steps(long_trained):
    _, model_dir = long_trained
    with open(model_dir / "train_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == list(range(50, LONG.steps + 1, 50))
    assert [int(row["crops_seen"]) for row in rows] == [8 * int(row["step"]) for row in rows]
    late = rows[len(rows) // 2:]
    # batch usage: 512 vectors a batch over 256 codes; 0.31-0.40 with the restart disabled
    assert min(float(row["batch_usage"]) for row in late) >= 0.5
    assert min(float(row["batch_perplexity"]) for row in late) >= 100  # 58-73 with the restart disabled
