"""Running an AST at another length than it was trained on.

AST adds a learned position embedding per (frequency patch, time patch). It was trained on
clips padded to ``max_length`` frames, so a short clip's sound always sat in the first time
patches. For a shorter input we therefore **crop**: keep the first time positions, exactly
the embeddings the model saw for the start of a padded clip. For a longer input (only when
``--max-frames`` exceeds the trained length) we **interpolate** the time axis linearly.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from bat_ast_embed.pieces import time_patches

__all__ = ["adapted_position_embeddings", "running_at", "time_patches"]


def adapted_position_embeddings(trained: torch.Tensor, frequency_patches: int, trained_time: int, new_time: int) -> torch.Tensor:
    """(1, 2 + F*T, H) -> (1, 2 + F*T', H); the first two rows (CLS, distillation) are kept."""
    if new_time == trained_time:
        return trained
    special, patches = trained[:, :2], trained[:, 2:]
    hidden = patches.shape[-1]
    grid = patches.reshape(1, frequency_patches, trained_time, hidden)
    if new_time < trained_time:
        grid = grid[:, :, :new_time]
    else:
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(frequency_patches, new_time), mode="bilinear",
                             align_corners=False).permute(0, 2, 3, 1)
    return torch.cat([special, grid.reshape(1, frequency_patches * new_time, hidden)], dim=1)


@contextmanager
def running_at(model: nn.Module, frames: int):
    """Temporarily give ``model`` (an ASTModel) position embeddings for ``frames`` input frames."""
    config = model.config
    embeddings = model.embeddings
    frequency_patches, trained_time = embeddings.get_shape(config)
    new_time = time_patches(frames, config.patch_size, config.time_stride)
    original = embeddings.position_embeddings
    if new_time == trained_time:
        yield
        return
    embeddings.position_embeddings = nn.Parameter(
        adapted_position_embeddings(original.data, frequency_patches, trained_time, new_time), requires_grad=False)
    try:
        yield
    finally:
        embeddings.position_embeddings = original
