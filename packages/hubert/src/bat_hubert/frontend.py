"""Iteration 0: the convolutional front-end learns to regress each frame's log-mel before masked prediction.

Masked prediction trains the front-end only through the unmasked context, a weak signal for the few hundred
steps a laptop gives: on shared/bats the front-end's features after the default recipe told calls from
background no better than random convolutions (probe of the pooled 10 ms windows 0.61 vs 0.59), while the
log-mel of the same samples scored 0.70. A few hundred steps of regressing the frame's own log-mel (the samples
frame i sees, ``targets.log_mel_frames``) give the front-end that spectrum (0.73 after 400 steps), and masked
prediction then starts from it. Unlabelled, like the rest of the recipe; only the convolutions are trained.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from bat_hubert.corpus import Crops
from bat_hubert.targets import frame_count, log_mel_frames, mel_filters

BLOCK = 64  # crops per forward when the targets and the held-back loss are computed


@dataclass
class FrontendResult:
    steps: int
    train_loss: float  # mean squared error of the standardised log-mel over the last 50 steps
    held_loss: float  # on the held-back crops: 1.0 is predicting each band's mean, 0.0 is exact
    held_frames: int
    seconds: float


def train_frontend(model, train: Crops, held: Crops, steps: int, batch_size: int, learning_rate: float, mels: int,
                   seed: int, device: torch.device) -> FrontendResult:
    """``steps`` AdamW steps of the convolutions (and a linear head, then dropped) on random batches of ``train``."""
    started = time.perf_counter()
    filters = mel_filters(mels).to(device)
    train_targets, held_targets = _log_mels(train, filters, device), _log_mels(held, filters, device)
    valid = train_targets[_valid_frames(train, np.arange(len(train)), train_targets.shape[1], device)].double()
    mean, std = valid.mean(0), valid.std(0, unbiased=False).clamp(min=1e-4)  # per band, over the valid frames
    train_targets, held_targets = ((targets - mean.float()) / std.float() for targets in (train_targets, held_targets))
    stage_seed = (seed * 1_000_003 + 7) % 2**62  # as train's epoch seeds: any --seed stays in range
    generator = torch.Generator().manual_seed(stage_seed)
    torch.manual_seed(stage_seed)
    head = torch.nn.Linear(model.config.conv_dim[-1], mels).to(device)
    parameters = [*model.feature_extractor.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.01)
    model.feature_extractor.train()
    losses = []
    for _ in range(steps):
        rows = torch.randperm(len(train), generator=generator)[:batch_size].numpy()
        loss, count = _loss(model, head, train, rows, train_targets, device)
        optimizer.zero_grad(set_to_none=True)
        if count:  # a batch of padding only moves nothing (weight decay included)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 10.0)
            optimizer.step()
            losses.append(float(loss.detach()))
    model.feature_extractor.eval()
    total, frames = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(held), BLOCK):
            loss, count = _loss(model, head, held, np.arange(start, min(len(held), start + BLOCK)), held_targets, device)
            total, frames = total + float(loss) * count, frames + count
    return FrontendResult(steps, float(np.mean(losses[-50:])) if losses else float("nan"),
                          total / frames if frames else float("nan"), frames, time.perf_counter() - started)


def frontend_record(steps: int, result: FrontendResult | None, logged_error: float | None) -> dict:
    """What the training JSON says of iteration 0: the steps run (0 when skipped: ``--init``, or none asked) and
    the held-back error, from this run or, after ``--resume``, from the log's iteration-0 row."""
    error = result.held_loss if result is not None else logged_error
    ran = result is not None or logged_error is not None
    return {"steps_run": steps if ran else 0,
            "held_back_error": round(error, 4) if error is not None and np.isfinite(error) else None}


def _valid_frames(crops: Crops, rows: np.ndarray, frames: int, device: torch.device) -> torch.Tensor:
    counts = torch.tensor([frame_count(int(v)) for v in crops.valid[rows]], device=device)
    return torch.arange(frames, device=device)[None, :] < counts[:, None]


def _log_mels(crops: Crops, filters: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(crops, frames, mels): every crop's log-mel frames, computed once (40 values per 320 samples: an eighth of
    the crops' own audio in memory)."""
    with torch.no_grad():
        blocks = [log_mel_frames(torch.from_numpy(crops.audio[start:start + BLOCK]).to(device), filters)
                  for start in range(0, len(crops), BLOCK)]
    return torch.cat(blocks) if blocks else torch.zeros((0, 0, filters.shape[1]), device=device)


def _loss(model, head, crops: Crops, rows: np.ndarray, targets: torch.Tensor, device) -> tuple[torch.Tensor, int]:
    audio = torch.from_numpy(crops.audio[rows]).to(device)
    target = targets[torch.from_numpy(rows).to(device)]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with autocast:
        predicted = head(model.feature_extractor(audio).transpose(1, 2)).float()
    valid = _valid_frames(crops, rows, target.shape[1], device)
    count = int(valid.sum())
    if count == 0:
        return predicted.sum() * 0.0, 0
    return ((predicted - target) ** 2)[valid].mean(), count
