"""Frame targets for masked prediction: k-means units of frames at the model's own frame rate.

Iteration 1 clusters log-mel frames computed with the conv front-end's window and hop (400 and 320
samples at 16 kHz, no centring), so target ``i`` describes exactly the samples that model frame ``i``
sees; later iterations cluster a middle layer of the previous model. Both use bat-core's k-means.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bat_core.kmeans import HashedSample, fit_kmeans, nearest
from bat_hubert.corpus import Crops
from bat_hubert.defaults import FRAME_SAMPLES, MODEL_RATE, SAMPLES_PER_FRAME

LOG_FLOOR = 1e-6


def frame_count(samples: int) -> int:
    """Frames of ``samples`` at the model's front-end (kernel 400, stride 320 overall)."""
    return 0 if samples < FRAME_SAMPLES else (samples - FRAME_SAMPLES) // SAMPLES_PER_FRAME + 1


def mel_filters(mels: int) -> torch.Tensor:
    from transformers.audio_utils import mel_filter_bank

    return torch.from_numpy(mel_filter_bank(num_frequency_bins=FRAME_SAMPLES // 2 + 1, num_mel_filters=mels,
                                            min_frequency=0.0, max_frequency=MODEL_RATE / 2,
                                            sampling_rate=MODEL_RATE, norm="slaney", mel_scale="slaney")).float()


def log_mel_frames(audio: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """(batch, samples) -> (batch, frame_count(samples), mels): frame i covers samples [320 i, 320 i + 400)."""
    spectrum = torch.stft(audio, n_fft=FRAME_SAMPLES, hop_length=SAMPLES_PER_FRAME, win_length=FRAME_SAMPLES,
                          window=torch.hann_window(FRAME_SAMPLES, device=audio.device), center=False,
                          return_complex=True).abs().pow(2)
    return torch.log(torch.clamp(spectrum.transpose(1, 2) @ filters, min=LOG_FLOOR))


FrameFeatures = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (batch, samples), valid -> (batch, frames, dim)


def cluster_targets(crops: Crops, features: FrameFeatures, k: int, seed: int, max_fit_frames: int,
                    batch_size: int = 64, device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """k-means over the valid frames of every crop (a capped ``HashedSample``), then every frame's unit.

    Returns (targets (crops, frames) int64 with -1 on padding, centroids). Features are computed twice
    (sample, then assignment) rather than held: the corpus's frames need not fit in memory."""
    frames = frame_count(crops.audio.shape[1])
    sample: HashedSample | None = None
    for start, block in _feature_blocks(crops, features, batch_size):
        for row, crop_frames in enumerate(block):
            valid = frame_count(int(crops.valid[start + row]))
            if sample is None:
                sample = HashedSample(max_fit_frames, crop_frames.shape[1], seed=seed)
            sample.add(str(start + row), 0, crop_frames[:valid])
    rows = sample.sample() if sample is not None else np.zeros((0, 1), dtype=np.float32)
    mean, std = rows.astype(np.float32).mean(0), rows.astype(np.float32).std(0) + 1e-5
    fit = fit_kmeans((rows - mean) / std, k, seed=seed, device=device)
    centroids = torch.from_numpy(fit.centroids).to(device)
    targets = np.full((len(crops), frames), -1, dtype=np.int64)
    for start, block in _feature_blocks(crops, features, batch_size):
        normalised = (torch.from_numpy(block).to(device) - torch.from_numpy(mean).to(device)) / torch.from_numpy(std).to(device)
        index, _ = nearest(normalised.reshape(-1, normalised.shape[-1]), centroids)
        units = index.reshape(len(block), -1).cpu().numpy()
        for row in range(len(block)):
            valid = frame_count(int(crops.valid[start + row]))
            targets[start + row, :valid] = units[row, :valid]
    return targets, fit.centroids


def _feature_blocks(crops: Crops, features: FrameFeatures, batch_size: int):
    for start in range(0, len(crops), batch_size):
        with torch.inference_mode():
            block = features(torch.from_numpy(crops.audio[start:start + batch_size]),
                             torch.from_numpy(crops.valid[start:start + batch_size]))
        yield start, block.float().cpu().numpy()


def pnmi(units: np.ndarray, labels: np.ndarray) -> float:
    """Phone-normalised mutual information (HuBERT's): I(label; unit) / H(label), over frames with a label."""
    keep = labels >= 0
    units, labels = units[keep], labels[keep]
    if len(units) == 0:
        return float("nan")
    joint = np.zeros((labels.max() + 1, units.max() + 1))
    np.add.at(joint, (labels, units), 1)
    joint /= joint.sum()
    p_label, p_unit = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nonzero = joint > 0
    mutual = float((joint[nonzero] * np.log(joint[nonzero] / (p_label @ p_unit)[nonzero])).sum())
    label_entropy = float(-(p_label[p_label > 0] * np.log(p_label[p_label > 0])).sum())
    return mutual / label_entropy if label_entropy > 0 else float("nan")
