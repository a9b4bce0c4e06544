"""Iteration 0: the convolutions learn the frames' log-mel, and nothing else in the model moves."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from bat_core.dataset import Dataset
from bat_core.runner import RunOptions
from bat_core.time_expansion import TimeExpansion
from bat_hubert.corpus import collect_crops
from bat_hubert.frontend import train_frontend
from bat_hubert.model import ModelSize, new_model

TINY = ModelSize(hidden_size=32, layers=1, heads=2, intermediate_size=64, conv_channels=16)


def _crops(demo_root):
    crops = collect_crops(list(Dataset.from_root(demo_root)), TimeExpansion(), 0.5, 200, 0,
                          RunOptions(workers=0, show_progress=False))
    return crops.subset(np.arange(len(crops) - 20)), crops.subset(np.arange(len(crops) - 20, len(crops)))


def test_the_convolutions_learn_to_regress_the_log_mel_and_nothing_else_moves(demo_root):
    train, held = _crops(demo_root)
    cpu = torch.device("cpu")
    untrained = train_frontend(new_model(TINY, 0), train, held, 1, 16, 0.0, 16, 0, cpu)  # lr 0: a random head
    model = new_model(TINY, 0)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    learnt = train_frontend(model, train, held, 100, 16, 1e-3, 16, 0, cpu)
    assert learnt.held_loss < 0.5 and untrained.held_loss > 0.8, (learnt, untrained)  # 1.0: each band's mean
    after = model.state_dict()
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert moved and all(name.startswith("feature_extractor.") for name in moved)
    again = new_model(TINY, 0)
    train_frontend(again, train, held, 100, 16, 1e-3, 16, 0, cpu)
    assert all(torch.equal(after[name], value) for name, value in again.state_dict().items())  # seeded


def test_padding_changes_nothing(demo_root):
    """Crops are padded past their valid samples: the statistics, the loss and the weights ignore what is there."""
    train, held = _crops(demo_root)
    padded = [crops for crops in (train, held) if (crops.valid < crops.audio.shape[1]).any()]
    assert padded, "the demo's short clips should give padded crops"
    noisy = []
    for crops in (train, held):
        audio = crops.audio.copy()
        outside = np.arange(audio.shape[1])[None, :] >= crops.valid[:, None]
        audio[outside] = np.random.default_rng(0).normal(size=int(outside.sum()))
        noisy.append(replace(crops, audio=audio))
    cpu = torch.device("cpu")
    results = [train_frontend(new_model(TINY, 0), t, h, 5, 16, 1e-3, 16, 0, cpu) for t, h in ((train, held), noisy)]
    assert results[0].held_loss == pytest.approx(results[1].held_loss, rel=1e-5)
    assert results[0].train_loss == pytest.approx(results[1].train_loss, rel=1e-5)
