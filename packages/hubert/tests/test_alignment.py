"""Targets and model frames describe the same samples: frame i covers [320 i, 320 i + 400) in both."""

import numpy as np
import pytest
import torch

from bat_hubert.model import ModelSize, new_model
from bat_hubert.targets import frame_count, log_mel_frames, mel_filters

TINY = ModelSize(hidden_size=32, layers=1, heads=2, intermediate_size=64, conv_channels=8)


@pytest.mark.parametrize("samples", [400, 719, 720, 1040, 16_000, 16_321])
def test_target_frames_count_as_model_frames(samples):
    model = new_model(TINY, seed=0).eval()
    audio = torch.randn(1, samples)
    with torch.inference_mode():
        model_frames = model(audio).last_hidden_state.shape[1]
        mel_frames = log_mel_frames(audio, mel_filters(16)).shape[1]
    assert model_frames == mel_frames == frame_count(samples)


@pytest.mark.parametrize("click", [1, 319, 321, 399, 401, 3_333, 7_999])  # not on a window start: Hann weighs it 0
def test_a_click_reaches_the_same_frames_in_targets_and_model(click):
    """Which frames change when one sample changes: the conv front-end's and the log-mel's agree."""
    model = new_model(TINY, seed=0).eval()
    filters = mel_filters(16)
    quiet = torch.full((1, 8_000), 1e-3)
    clicked = quiet.clone()
    clicked[0, click] = 1.0
    with torch.inference_mode():
        conv = [model.feature_extractor(a)[0].T for a in (quiet, clicked)]  # (frames, channels)
        mels = [log_mel_frames(a, filters)[0] for a in (quiet, clicked)]
    conv_changed = np.flatnonzero((conv[0] - conv[1]).abs().amax(1).numpy() > 1e-6)
    mel_changed = np.flatnonzero((mels[0] - mels[1]).abs().amax(1).numpy() > 1e-6)
    expected = [i for i in range(frame_count(8_000)) if 320 * i <= click < 320 * i + 400]
    assert list(conv_changed) == list(mel_changed) == expected
