"""The AST forward over a batch of windows, in the runner's process.

Windows of a batch share one run length (the runner batches by ``Piece.length``), so a
window's padding never depends on its batch mates. On CUDA the batch is filled in pinned
host memory and copied without blocking, the outputs come back the same way, and the
encoder returns a collector: the runner launches the next batch before it asks for these
outputs, so the host never waits on the device between batches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bat_ast_embed.pieces import time_patches
from bat_ast_embed.pooling import WindowOutput
from bat_ast_embed.positions import running_at
from bat_core.device import to_host
from bat_core.runner import Piece


class ASTEncoder:
    """Runner encoder: pieces (frames of one window each) -> ``WindowOutput`` per piece."""

    max_length = None  # batches are bounded by their count of windows

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype, *, layer: int,
                 pad_value: float, batch_size: int, keep_sequence: bool):
        self.model, self.device, self.dtype = model, device, dtype
        self.layer, self.pad_value, self.keep_sequence = layer, pad_value, keep_sequence
        self.max_items = batch_size
        config = model.config
        self.patch_size, self.time_stride = int(config.patch_size), int(config.time_stride)
        self.frequency_patches = (int(config.num_mel_bins) - self.patch_size) // int(config.frequency_stride) + 1

    @property
    def asynchronous(self) -> bool:
        return self.device.type == "cuda"

    def __call__(self, batch: list[Piece]) -> list[WindowOutput] | Callable[[], list[WindowOutput]]:
        length = batch[0].length
        valid_times = [min(time_patches(length, self.patch_size, self.time_stride),
                           time_patches(len(piece.data), self.patch_size, self.time_stride)) for piece in batch]
        with torch.inference_mode():
            copied = to_host([self._forward(batch, length, valid_times)])
        if not self.asynchronous:
            return self._split(copied()[0], len(batch), valid_times)
        return lambda: self._split(copied()[0], len(batch), valid_times)

    def _forward(self, batch: list[Piece], length: int, valid_times: list[int]) -> torch.Tensor:
        """One float32 tensor on the device: poolers (n rows), means (n rows), then each window's sequence."""
        n_mels = batch[0].data.shape[1]
        inputs = torch.empty((len(batch), length, n_mels), dtype=torch.float32, pin_memory=self.asynchronous)
        filled = inputs.numpy()
        filled.fill(self.pad_value)
        for row, piece in enumerate(batch):
            frames = piece.data[:length]
            filled[row, : len(frames)] = frames
        inputs = inputs.to(self.device, non_blocking=self.asynchronous).to(self.dtype)
        with running_at(self.model, length):
            output = self.model(input_values=inputs, output_hidden_states=self.layer != -1)
        hidden = output.last_hidden_state if self.layer == -1 else self.model.layernorm(output.hidden_states[self.layer])
        hidden = hidden.float()
        patches = hidden[:, 2:].reshape(len(batch), self.frequency_patches, time_patches(length, self.patch_size, self.time_stride), -1)
        pooler = (hidden[:, 0] + hidden[:, 1]) / 2
        sequences = [patches[row, :, :valid].mean(dim=0) for row, valid in enumerate(valid_times)]
        means = torch.stack([sequence.mean(dim=0) for sequence in sequences])
        return torch.cat([pooler, means, *(sequences if self.keep_sequence else [])])

    def _split(self, flat: np.ndarray, count: int, valid_times: list[int]) -> list[WindowOutput]:
        poolers, means = flat[:count], flat[count: 2 * count]
        outputs, start = [], 2 * count
        for row, valid in enumerate(valid_times):
            if self.keep_sequence:
                sequence = flat[start: start + valid]
                start += valid
            else:
                sequence = flat[:0]
            outputs.append(WindowOutput(poolers[row].copy(), means[row].copy(), sequence.copy()))
        return outputs
