"""The runner's encoders: a batch of windows through the model, and only what a command needs off the device.

- ``SampledRows``  (fit): the rows of each window that the k-means sample can still take, gathered on
  the device (once the sample is full, a few per window), then copied to the host.
- ``OwnedFrames``  (run's one pass): each window's own frames, float32, for the frame cache.
- ``Tokens``       (encode): nearest centroids on the device; only int16 tokens leave it.
- ``CachedTokens`` (run, after the fit): tokens of cached frames.

On CUDA each call launches its work, starts a non-blocking copy into pinned host memory and returns a
collector that waits for that copy alone: the runner collects batch k after launching batch k+1, so
the GPU never waits on the host between batches. A frame with a NaN or an infinity is reported with
its piece (never a token, a cached row or a sample row), and the file fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bat_core.device import to_host
from bat_core.errors import NonFiniteError
from bat_core.kmeans import HashedSample, nearest
from bat_core.runner import Piece
from bat_w2v_kmeans.encoder import SpeechEncoder
from bat_w2v_kmeans.pieces import owned_frames

CACHED_BLOCKS_PER_BATCH = 8  # of CachedFrames.block_rows rows
ASSIGN_ROWS = 8192  # rows per float64 distance block (50 MB at 768 dimensions)
INVALID_TOKEN = -1  # a frame that was not finite: its file fails


@dataclass
class SampleRows:
    """Rows of one window offered to the k-means sample: those it may keep, their priorities, and how many
    rows the window owned in all."""

    rows: np.ndarray
    priorities: np.ndarray
    offered: int
    non_finite: int = 0


def check_finite_rows(non_finite: int, what: str) -> None:
    if non_finite:
        raise NonFiniteError(f"the encoder gave {non_finite} frame(s) with NaN/inf values for {what}")


def centroids_on(device: torch.device, centroids: np.ndarray) -> torch.Tensor:
    """Centroids for ``assign``: float64 where the device has it (not on Apple MPS)."""
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.from_numpy(np.ascontiguousarray(centroids)).to(device=device, dtype=dtype)


def assign(frames: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """int16 nearest centroid of each row (``INVALID_TOKEN`` for a non-finite row), on the frames' device.

    Distances in float64: a row's token then does not depend on which rows share the matrix product
    (float32 products differ in the last bit with the block shape), so tokens made from the model's
    batches, from cached frames or from one recording in memory are the same."""
    tokens = []
    for start in range(0, len(frames), ASSIGN_ROWS):  # row blocks: the float64 copy stays small
        block = frames[start:start + ASSIGN_ROWS]
        indices, _ = nearest(block.to(centroids.dtype), centroids)
        finite = torch.isfinite(block).all(dim=1)
        tokens.append(torch.where(finite, indices, torch.full_like(indices, INVALID_TOKEN)).to(torch.int16))
    return torch.cat(tokens) if tokens else torch.zeros(0, dtype=torch.int16, device=frames.device)


def _split(array: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    return np.split(array, np.cumsum(counts)[:-1]) if len(counts) else []


class _ModelBatches:
    def __init__(self, encoder: SpeechEncoder):
        self.encoder = encoder
        self.max_items = encoder.batch_size
        self.max_length: int | None = encoder.max_batch_samples()

    def _rows(self, hidden: torch.Tensor, rows: list[np.ndarray]) -> torch.Tensor:
        """The given rows (flat indices into batch x frames) of the hidden states, as float32."""
        index = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        flat = hidden.reshape(-1, hidden.shape[-1])
        return flat.index_select(0, self.encoder.to_device(index.astype(np.int64))).float()


class Tokens(_ModelBatches):
    """encode: each window's tokens, one per real frame (the assembler keeps the window's own share)."""

    def __init__(self, encoder: SpeechEncoder, centroids: np.ndarray):
        super().__init__(encoder)
        self.centroids = centroids_on(encoder.device, centroids)

    @torch.inference_mode()
    def __call__(self, batch: list[Piece]) -> Callable[[], list[np.ndarray]]:
        hidden, counts = self.encoder.hidden_states(batch)
        frames = hidden.shape[1]
        rows = [row * frames + np.arange(count) for row, count in enumerate(counts)]
        collect = to_host([assign(self._rows(hidden, rows), self.centroids)])
        return lambda: _split(collect()[0], counts)


class OwnedFrames(_ModelBatches):
    """run's one pass: each window's own frames (float32), in recording order, for the frame cache."""

    @torch.inference_mode()
    def __call__(self, batch: list[Piece]) -> Callable[[], list[np.ndarray]]:
        hidden, counts = self.encoder.hidden_states(batch)
        frames, spf = hidden.shape[1], self.encoder.samples_per_frame
        rows, sizes = [], []
        for row, (piece, count) in enumerate(zip(batch, counts)):
            owned, _ = owned_frames(piece.meta, count, spf)
            rows.append(row * frames + np.arange(owned.start, owned.stop))
            sizes.append(owned.stop - owned.start)
        collect = to_host([self._rows(hidden, rows)])
        return lambda: _split(collect()[0], sizes)


class SampledRows(_ModelBatches):
    """fit: of each window's own frames, only the rows the sample may still keep leave the device.

    ``keys[piece.file]`` names the file a piece comes from (the runner numbers files in the order of
    the items it was given). The sample's threshold only falls, so rows chosen now are a superset of
    what it will keep: the sample is the same as if every row were offered."""

    def __init__(self, encoder: SpeechEncoder, sample: HashedSample, keys: Sequence[str]):
        super().__init__(encoder)
        self.sample, self.keys = sample, keys

    @torch.inference_mode()
    def __call__(self, batch: list[Piece]) -> Callable[[], list[SampleRows]]:
        hidden, counts = self.encoder.hidden_states(batch)
        frames, spf = hidden.shape[1], self.encoder.samples_per_frame
        owned_rows, wanted_rows, wanted = [], [], []
        for row, (piece, count) in enumerate(zip(batch, counts)):
            owned, first = owned_frames(piece.meta, count, spf)
            offered = owned.stop - owned.start
            key = self.keys[piece.file] if piece.clip is None else f"{self.keys[piece.file]}#{piece.clip.call_index}"
            keep, priorities = self.sample.wanted(key, first, offered)
            owned_rows.append(row * frames + np.arange(owned.start, owned.stop))
            wanted_rows.append(row * frames + owned.start + keep)
            wanted.append((priorities, offered))
        finite = torch.isfinite(hidden).all(dim=-1).reshape(-1)
        owned_index = self.encoder.to_device(np.concatenate(owned_rows).astype(np.int64))
        owner = self.encoder.to_device(np.repeat(np.arange(len(batch)), [len(r) for r in owned_rows]).astype(np.int64))
        non_finite = torch.zeros(len(batch), dtype=torch.int64, device=hidden.device).index_add_(
            0, owner, (~finite.index_select(0, owned_index)).to(torch.int64))
        rows = self._rows(hidden, wanted_rows)
        if self.sample.dtype == np.float16:  # the sample keeps float16: cast on the device (numpy's cast is slow)
            rows = rows.half()
        collect = to_host([rows, non_finite])

        def outputs() -> list[SampleRows]:
            rows, bad = collect()
            parts = _split(rows, [len(priorities) for priorities, _ in wanted])
            return [SampleRows(part, priorities, offered, int(count))
                    for part, (priorities, offered), count in zip(parts, wanted, bad)]

        return outputs


class CachedTokens:
    """run, after the fit: blocks of cached frames -> int16 tokens on the device."""

    def __init__(self, encoder: SpeechEncoder, centroids: np.ndarray, blocks_per_batch: int = CACHED_BLOCKS_PER_BATCH):
        self.encoder = encoder
        self.max_items, self.max_length = blocks_per_batch, None
        self.centroids = centroids_on(encoder.device, centroids)

    @torch.inference_mode()
    def __call__(self, batch: list[Piece]) -> Callable[[], list[np.ndarray]]:
        counts = [len(piece.data) for piece in batch]
        frames = self.encoder.to_device(np.concatenate([piece.data for piece in batch]))
        collect = to_host([assign(frames, self.centroids)])
        return lambda: _split(collect()[0], counts)
