"""The runner's model step: a batch of mel windows -> codes, in the main process.

On CUDA the batch goes up from pinned memory without blocking, and the codes come back
into pinned memory behind an event: the encoder returns a collector, and the runner
collects it after launching the next batch, so the GPU never waits on the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bat_core.device import to_host
from bat_core.runner import Piece
from bat_vqvae.artefact import code_dtype

if TYPE_CHECKING:
    from bat_vqvae.artefact import VQVAETokenizer

CPU_FRAMES_PER_BATCH = 8192  # two default windows: a CPU conv gains nothing from more, memory stays ~300 MB
GPU_MEMORY_SHARE = 0.25  # of the free GPU memory, for one batch's activations
MAX_WINDOWS_PER_BATCH = 64  # the runner holds up to twice this many windows while it groups them
Deferred = Callable[[], list[np.ndarray]]


def batch_limits(tokenizer: VQVAETokenizer) -> tuple[int, int]:
    """``(windows, summed frames)`` per batch: from free memory on a GPU, a fixed small bound on a CPU."""
    device = tokenizer.device
    if device.type != "cuda":
        return 8, CPU_FRAMES_PER_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    frames = int(GPU_MEMORY_SHARE * free / _bytes_per_frame(tokenizer))
    window, _ = tokenizer.window_frames()
    return MAX_WINDOWS_PER_BATCH, max(window, frames)


def _bytes_per_frame(tokenizer: VQVAETokenizer) -> float:
    """Activation bytes per input mel frame, encode + decode, with room for the framework's workspace."""
    config = tokenizer.config
    values = 2.0 * config.n_mels  # input and reconstruction
    for layer in range(1, config.downsample_layers + 1):
        channels = config.code_dim if layer == config.downsample_layers else config.hidden
        values += 2 * 2 * channels * config.n_mels / 4 ** layer  # conv out + activation, encoder and decoder
    values += 2 * config.codes * config.n_mels / config.stride ** 2  # nearest-code scores
    return 3 * 4 * values


def stacked(batch: Sequence[Piece], device: torch.device) -> torch.Tensor:
    """Windows of equal length -> one (B, n_mels, w) tensor on the device (pinned, non-blocking on CUDA)."""
    tensor = torch.from_numpy(np.stack([piece.data for piece in batch]))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def deferred(tensors: Sequence[torch.Tensor], device: torch.device) -> list[np.ndarray] | Deferred:
    """The tensors as numpy arrays: at once on a CPU; on CUDA a collector that waits for their copies."""
    collect = to_host(tensors)
    return collect if device.type == "cuda" else collect()


class CodeEncoder:
    """Runner encoder: normalised mel windows -> each window's codes ``(T'_w, F')``; the assembler keeps
    the codes each window owns."""

    def __init__(self, tokenizer: VQVAETokenizer):
        self.tokenizer = tokenizer
        self.max_items, self.max_length = batch_limits(tokenizer)
        self.dtype = code_dtype(tokenizer.config.codes)

    def __call__(self, batch: list[Piece]) -> list[Any] | Callable[[], list[Any]]:
        device = self.tokenizer.device
        codes = self.tokenizer.model.encode(stacked(batch, device))
        codes = codes.to(torch.int16 if self.dtype == np.int16 else torch.int32)
        arrays = deferred([codes], device)
        if callable(arrays):
            return lambda: list(arrays()[0])
        return list(arrays[0])
