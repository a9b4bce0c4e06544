"""Masked prediction, one HuBERT iteration: frames masked as in HuBERT (spans, transformers'
``_compute_mask_indices``), a linear head over the last layer, cross-entropy on masked frames only.

Every epoch reseeds torch and numpy from (seed, iteration, epoch) and the learning rate is a function
of the global step, so an epoch's result depends only on the state saved before it: a run resumed from
a checkpoint ends with the same weights as one never stopped (on CPU).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bat_hubert.corpus import Crops
from bat_hubert.defaults import BATCH_SIZE, LEARNING_RATE, MASK_LENGTH, MASK_PROB, WARMUP_FRACTION
from bat_hubert.targets import frame_count

EVAL_SEED = 12345  # the held-back crops' masks are the same at every epoch: accuracies compare
GRADIENT_CLIP = 10.0


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int = BATCH_SIZE
    learning_rate: float = LEARNING_RATE
    warmup_fraction: float = WARMUP_FRACTION
    mask_prob: float = MASK_PROB
    mask_length: int = MASK_LENGTH
    seed: int = 0


@dataclass
class EpochResult:
    iteration: int
    epoch: int
    train_loss: float
    held_loss: float
    held_accuracy: float
    chance_accuracy: float  # the most frequent target's share of the held-back masked frames
    masked_frames: int
    seconds: float
    epochs: int = 0  # of this iteration (the settings' epochs, raised to reach the minimum steps)


@dataclass
class Stage:
    """What an iteration trains: the model, its head and optimizer, and the crops' targets."""

    model: torch.nn.Module
    head: torch.nn.Linear
    optimizer: torch.optim.Optimizer
    train_targets: np.ndarray  # (crops, frames) int64, -1 on padding
    held_targets: np.ndarray


def new_stage(model: torch.nn.Module, k: int, train_targets: np.ndarray, held_targets: np.ndarray,
              settings: TrainSettings, iteration: int) -> Stage:
    torch.manual_seed(_epoch_seed(settings.seed, iteration, -1))
    head = torch.nn.Linear(model.config.hidden_size, k).to(next(model.parameters()).device)  # before the optimizer
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=settings.learning_rate,
                                  betas=(0.9, 0.98), weight_decay=0.01)
    return Stage(model, head, optimizer, train_targets, held_targets)


def sample_masks(valid: np.ndarray, frames: int, settings: TrainSettings) -> torch.Tensor:
    """(crops, frames) bool: HuBERT's span masks within each crop's valid frames (numpy's global RNG)."""
    from transformers.models.hubert.modeling_hubert import _compute_mask_indices

    lengths = np.array([frame_count(int(v)) for v in valid])
    frame_mask = torch.from_numpy((np.arange(frames)[None, :] < lengths[:, None]).astype(np.int64))
    masks = _compute_mask_indices((len(valid), frames), settings.mask_prob, settings.mask_length,
                                  attention_mask=frame_mask, min_masks=1)
    return torch.from_numpy(masks) & frame_mask.bool()


def masked_logits(stage: Stage, audio: torch.Tensor, valid: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Logits of every frame, the masked ones replaced by the model's mask embedding at its input."""
    attention = (torch.arange(audio.shape[1])[None, :] < valid[:, None]).long().to(audio.device)
    device = audio.device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with autocast:
        hidden = stage.model(audio, attention_mask=attention, mask_time_indices=masks.to(device)).last_hidden_state
        return stage.head(hidden).float()


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Cross-entropy over masked frames with a target only (HuBERT's alpha = 1: unmasked frames add
    nothing); also the count of those frames and of the correct predictions among them."""
    chosen = masks.to(logits.device) & (targets >= 0).to(logits.device)
    picked_targets = targets.to(logits.device)[chosen]
    picked = logits[chosen]
    if len(picked) == 0:
        return logits.sum() * 0.0, 0, 0
    loss = torch.nn.functional.cross_entropy(picked, picked_targets)
    return loss, len(picked), int((picked.argmax(-1) == picked_targets).sum())


def train_epoch(stage: Stage, crops: Crops, settings: TrainSettings, iteration: int, epoch: int,
                device: torch.device) -> float:
    """One pass over the training crops in a seeded order; the mean loss."""
    seed = _epoch_seed(settings.seed, iteration, epoch)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    order = torch.randperm(len(crops), generator=torch.Generator().manual_seed(seed)).numpy()
    steps_per_epoch = steps(len(crops), settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    stage.model.train()
    stage.head.train()
    losses = []
    frames = stage.train_targets.shape[1]
    for step, start in enumerate(range(0, len(order), settings.batch_size)):
        rows = order[start:start + settings.batch_size]
        for group in stage.optimizer.param_groups:
            group["lr"] = learning_rate(epoch * steps_per_epoch + step, total_steps, settings)
        masks = sample_masks(crops.valid[rows], frames, settings)
        audio = torch.from_numpy(crops.audio[rows]).to(device)
        logits = masked_logits(stage, audio, torch.from_numpy(crops.valid[rows]), masks)
        loss, count, _ = masked_loss(logits, torch.from_numpy(stage.train_targets[rows]), masks)
        stage.optimizer.zero_grad(set_to_none=True)
        if count:
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*stage.model.parameters(), *stage.head.parameters()], GRADIENT_CLIP)
            stage.optimizer.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses)) if losses else float("nan")


@torch.inference_mode()
def evaluate(stage: Stage, crops: Crops, settings: TrainSettings, device: torch.device) -> tuple[float, float, float, int]:
    """Held-back crops with fixed masks: (loss, masked-frame accuracy, chance accuracy, masked frames)."""
    stage.model.eval()
    stage.head.eval()
    state = np.random.get_state()
    np.random.seed(EVAL_SEED)
    frames = stage.held_targets.shape[1]
    total_loss, total_count, correct, seen = 0.0, 0, 0, []
    try:
        for start in range(0, len(crops), settings.batch_size):
            rows = np.arange(start, min(len(crops), start + settings.batch_size))
            masks = sample_masks(crops.valid[rows], frames, settings)
            targets = torch.from_numpy(stage.held_targets[rows])
            logits = masked_logits(stage, torch.from_numpy(crops.audio[rows]).to(device),
                                   torch.from_numpy(crops.valid[rows]), masks)
            loss, count, right = masked_loss(logits, targets, masks)
            total_loss += float(loss) * count
            total_count += count
            correct += right
            seen.append(targets[masks & (targets >= 0)].numpy())
    finally:
        np.random.set_state(state)
    if total_count == 0:
        return float("nan"), float("nan"), float("nan"), 0
    chance = float(np.bincount(np.concatenate(seen)).max() / total_count)
    return total_loss / total_count, correct / total_count, chance, total_count


def run_epochs(stage: Stage, train: Crops, held: Crops, settings: TrainSettings, iteration: int, first_epoch: int,
               device: torch.device, after_epoch: Callable[[EpochResult], None]) -> None:
    for epoch in range(first_epoch, settings.epochs):
        started = time.perf_counter()
        train_loss = train_epoch(stage, train, settings, iteration, epoch, device)
        held_loss, accuracy, chance, count = evaluate(stage, held, settings, device)
        after_epoch(EpochResult(iteration, epoch, train_loss, held_loss, accuracy, chance, count,
                                time.perf_counter() - started, settings.epochs))


def learning_rate(step: int, total_steps: int, settings: TrainSettings) -> float:
    """Linear warm-up, then linear decay to zero (fairseq HuBERT's polynomial schedule, power 1)."""
    warmup = max(1, int(settings.warmup_fraction * total_steps))
    if step < warmup:
        return settings.learning_rate * (step + 1) / warmup
    return settings.learning_rate * max(0.0, (total_steps - step) / max(1, total_steps - warmup))


def steps(count: int, batch_size: int) -> int:
    """Optimiser steps in one epoch over ``count`` crops (the last batch may be short)."""
    return (count + batch_size - 1) // batch_size


def _epoch_seed(seed: int, iteration: int, epoch: int) -> int:
    return (seed * 1_000_003 + iteration * 10_007 + epoch + 1) % 2**62
