"""Batch size and learning-rate schedule for the device training runs on.

A CPU keeps today's recipe (batch 8, Adam 3e-4, no warm-up): results there compare with every
earlier run. A CUDA GPU at batch 8 sits idle (1588-1845 crops/s on an H100, 0.89x the naive
recipe), so it gets batch 256 with the learning rate scaled by about the square root of the
batch ratio (3e-4 * sqrt(32) = 1.7e-3, rounded down to 1e-3 for a conv net with a quantiser in
the loop) and a linear warm-up, which large-batch Adam needs in its first steps. The dead-code
rule is relative to the batch (``quantizer``), so it holds at either batch size.

No torch here: the CLI resolves these after parsing, before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceRecipe:
    batch_size: int
    lr: float
    warmup_steps: int


CPU_RECIPE = DeviceRecipe(batch_size=8, lr=3e-4, warmup_steps=0)
GPU_RECIPE = DeviceRecipe(batch_size=256, lr=1e-3, warmup_steps=50)


def recipe_for(device_type: str) -> DeviceRecipe:
    """The GPU recipe only on CUDA (where it was sized); CPU and Apple MPS keep today's."""
    return GPU_RECIPE if device_type == "cuda" else CPU_RECIPE


def steps_for_crops(crops: int, batch_size: int) -> int:
    """Optimiser steps that show at least ``crops`` crops: training length in data seen, whatever the device's
    batch (the GPU recipe's 256 or the CPU's 8), so runs on either compare."""
    return max(1, -(-crops // batch_size))


def learning_rate(base: float, warmup_steps: int, step: int) -> float:
    """Linear warm-up to ``base`` over ``warmup_steps``, then constant: a function of the step alone, so a resumed
    run sets the same rate as an uninterrupted one without a scheduler's state in the checkpoint."""
    if warmup_steps <= 0:
        return base
    return base * min(1.0, (step + 1) / warmup_steps)
