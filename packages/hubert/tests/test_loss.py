"""Masked prediction: the loss is over masked frames only, and the masks stay within real frames."""

import numpy as np
import torch

from bat_hubert.model import ModelSize, new_model
from bat_hubert.targets import frame_count, pnmi
from bat_hubert.train import TrainSettings, masked_logits, masked_loss, new_stage, sample_masks

TINY = ModelSize(hidden_size=32, layers=1, heads=2, intermediate_size=64, conv_channels=8)


def _stage_and_batch(k=6):
    model = new_model(TINY, seed=0)
    frames = frame_count(8_000)
    rng = np.random.default_rng(0)
    targets = torch.from_numpy(rng.integers(0, k, size=(3, frames)))
    stage = new_stage(model, k, targets.numpy(), targets.numpy(), TrainSettings(epochs=1), iteration=1)
    stage.model.eval()
    audio = torch.randn(3, 8_000)
    valid = torch.tensor([8_000, 8_000, 4_000])
    np.random.seed(0)
    masks = sample_masks(valid.numpy(), frames, TrainSettings(epochs=1))
    return stage, audio, valid, masks, targets


def test_unmasked_targets_do_not_change_the_loss():
    stage, audio, valid, masks, targets = _stage_and_batch()
    with torch.inference_mode():
        logits = masked_logits(stage, audio, valid, masks)
    loss, count, _ = masked_loss(logits, targets, masks)
    assert 0 < count < masks.numel()
    other = targets.clone()
    other[~masks] = (other[~masks] + 1) % 6
    assert float(masked_loss(logits, other, masks)[0]) == float(loss)
    changed = targets.clone()
    changed[masks] = (changed[masks] + 1) % 6
    assert float(masked_loss(logits, changed, masks)[0]) != float(loss)


def test_masks_stay_within_each_crops_real_frames():
    _, _, valid, masks, _ = _stage_and_batch()
    real = frame_count(4_000)
    assert masks[2, real:].sum() == 0  # nothing masked in a crop's padding
    assert all(masks[row, :frame_count(int(v))].sum() > 0 for row, v in enumerate(valid))


def test_pnmi_is_one_for_units_that_name_the_label_and_zero_for_independent_ones():
    labels = np.repeat([0, 1, 2], 400)
    assert abs(pnmi(labels * 2 + np.arange(1200) % 2, labels) - 1.0) < 1e-9
    units = np.tile(np.arange(4), 300)
    assert abs(pnmi(units, labels)) < 1e-9
