"""Residual vector quantisation (SoundStream, EnCodec, DAC): ``depth`` codebooks, each quantising what the
levels before it left.

Each level is bat-vqvae's ``EMAVectorQuantizer`` (k-means start on its own residuals, EMA updates, the same
batch-relative dead-code restart), so every level stays alive by the rule the single codebook uses. A code is
``depth`` indices, one per level; the vector is the sum of their code vectors. The gradient reaches the encoder
straight through the sum (identity), not once per level.

Written here rather than taken from vector-quantize-pytorch's ``ResidualVQ``: it is a loop over the quantiser
this package already has (and measured 4.1x faster than the library's, see ``quantizer``), and its state is the
levels' plain buffers, so checkpoints stay safetensors and resume bit-exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from bat_vqvae.quantizer import EMAVectorQuantizer


class ResidualVectorQuantizer(nn.Module):
    """Rows (N, dim) -> straight-through rows, indices (N, depth), summed commitment loss."""

    def __init__(self, codes: int, dim: int, depth: int, decay: float = 0.99, commitment: float = 0.25,
                 dead_code_share: float = 1 / 16):
        super().__init__()
        self.codes, self.dim, self.depth = codes, dim, depth
        self.levels = nn.ModuleList(EMAVectorQuantizer(codes, dim, decay=decay, commitment=commitment,
                                                       dead_code_share=dead_code_share) for _ in range(depth))

    @torch.no_grad()
    def initialise(self, vectors: torch.Tensor, iters: int, seed: int, vectors_per_batch: int) -> None:
        """Level by level: k-means of what the levels before left (each level's own seed)."""
        residual = vectors.detach().float()
        for level, quantizer in enumerate(self.levels):
            quantizer.initialise(residual, iters, seed + level, vectors_per_batch)
            residual = residual - quantizer.lookup(quantizer.nearest(residual))

    def nearest(self, vectors: torch.Tensor) -> torch.Tensor:
        residual, indices = vectors.float(), []
        for quantizer in self.levels:
            chosen = quantizer.nearest(residual)
            residual = residual - quantizer.lookup(chosen)
            indices.append(chosen)
        return torch.stack(indices, dim=-1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Sum of each level's code vector; ``indices`` (..., depth)."""
        return sum(quantizer.lookup(indices[..., level]) for level, quantizer in enumerate(self.levels))

    def forward(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        vectors = vectors.float()
        residual = vectors.detach()
        quantised = torch.zeros_like(residual)
        indices, commitment = [], vectors.new_zeros(())
        for quantizer in self.levels:
            # each level's EMA and dead-code restart see its own residual (detached); the commitment terms pull
            # the encoder output towards the running sum of the levels
            level_vectors, chosen, _ = quantizer(residual)  # the codes as chosen, before this step's EMA update
            commitment = commitment + quantizer.commitment * torch.mean((vectors - (quantised + level_vectors)) ** 2)
            quantised = quantised + level_vectors
            residual = residual - level_vectors
            indices.append(chosen)
        straight_through = vectors + (quantised - vectors).detach()
        return straight_through, torch.stack(indices, dim=-1), commitment
