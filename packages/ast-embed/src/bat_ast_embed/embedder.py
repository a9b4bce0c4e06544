"""Waveform -> the checkpoint's own filterbank -> AST -> pooled vector (and patch sequence).

The feature extractor is the one saved with the checkpoint, fed a raw waveform at its own
rate (16 kHz for AudioSet ASTs) after bat-core's time expansion, so the model sees what it
was trained on. Lengths: see ``EmbedConfig`` and ``positions``.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bat_ast_embed.config import EmbedConfig
from bat_ast_embed.positions import running_at, time_patches
from bat_core.batching import bucket_length, length_batches
from bat_core.device import compute_dtype, resolve_device
from bat_core.pretrained import load_pretrained
from bat_core.time_expansion import SignalConversion, convert_for_model

WINDOW_SAMPLES = 400  # the extractor's 25 ms frame at 16 kHz
HOP_SAMPLES = 160


@dataclass
class Features:
    """Normalised filterbank frames (n_frames, n_mels) of one recording, and what made them."""

    frames: np.ndarray
    conversion: SignalConversion | None
    seconds: float


@dataclass
class Embedding:
    pooled: np.ndarray  # (hidden,) as chosen by --pool (pooler output unless pool="mean")
    mean: np.ndarray  # (hidden,) mean of valid patch tokens
    pooler: np.ndarray  # (hidden,) the model's pooler output ((CLS + distillation) / 2)
    sequence: np.ndarray  # (time patches, hidden): patch tokens averaged over frequency
    windows: int
    run_frames: list[int]


@dataclass
class _Window:
    owner: int
    frames: np.ndarray
    valid: int
    run_length: int


class ASTEmbedder:
    def __init__(self, model, extractor, config: EmbedConfig, device: torch.device, precision: str = "auto"):
        self.model = model.eval()
        self.extractor = extractor
        self.config = config
        self.device = device
        self.dtype = compute_dtype(device, precision)
        self.model.to(device=device, dtype=self.dtype)
        model_config = model.config
        self.trained_frames = int(model_config.max_length)
        self.patch_size, self.time_stride = int(model_config.patch_size), int(model_config.time_stride)
        self.pad_value = float(extractor.normalize(np.zeros(1))[0]) if extractor.do_normalize else 0.0
        self.layers = int(model_config.num_hidden_layers)
        if not -1 <= config.layer <= self.layers:
            raise ValueError(f"--layer must be -1 (last) or 0..{self.layers} for this model, got {config.layer}")

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, config: EmbedConfig | None = None,
                        device: str = "auto", precision: str = "auto") -> ASTEmbedder:
        """Load the extractor and model by Hugging Face name or local folder (``save_pretrained``)."""
        from transformers import ASTFeatureExtractor, ASTModel

        config = config or EmbedConfig()
        if name_or_path is not None:
            config = replace(config, model=str(name_or_path))
        extractor = load_pretrained(ASTFeatureExtractor.from_pretrained, config.model, "AST feature extractor")
        model = load_pretrained(ASTModel.from_pretrained, config.model, "AST model")
        return cls(model, extractor, config, resolve_device(device), precision)

    @property
    def sample_rate(self) -> int:
        return int(self.extractor.sampling_rate)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def length_limit(self) -> int:
        """Longest input run in one pass; longer recordings are split into windows of it."""
        if self.config.max_frames in (None, "auto"):
            return self.trained_frames
        return int(self.config.max_frames)

    def sequence_frames_per_second(self, conversion: SignalConversion | None) -> float:
        """Patch-sequence steps per second of original audio."""
        expansion = conversion.time_expansion if conversion else 1.0
        return self.sample_rate / (HOP_SAMPLES * self.time_stride) * expansion

    # -- input -------------------------------------------------------------
    def features(self, samples: np.ndarray, sample_rate: int) -> Features:
        converted, conversion = convert_for_model(samples, sample_rate, self.sample_rate, self.config.time_expansion)
        if len(converted) < WINDOW_SAMPLES:  # shorter than one filterbank frame
            converted = np.pad(converted, (0, WINDOW_SAMPLES - len(converted)))
        n_frames = 1 + (len(converted) - WINDOW_SAMPLES) // HOP_SAMPLES
        extractor = copy.copy(self.extractor)
        extractor.max_length = n_frames  # the whole recording, unpadded; lengths are decided later
        frames = extractor(converted, sampling_rate=self.sample_rate, return_tensors="np")["input_values"][0]
        return Features(np.asarray(frames, dtype=np.float32), conversion, len(samples) / sample_rate)

    def _run_length(self, valid: int) -> int:
        if self.config.max_frames == "auto":
            return bucket_length(valid, self.config.bucket_frames, self.patch_size, self.length_limit)
        return self.length_limit

    def _windows(self, owner: int, frames: np.ndarray) -> list[_Window]:
        limit = self.length_limit
        # consecutive windows start on the patch grid, so their patch sequences join without gaps
        hop = time_patches(limit, self.patch_size, self.time_stride) * self.time_stride
        starts = [0] if len(frames) <= limit else list(range(0, len(frames) - limit + hop, hop))
        windows = []
        for start in starts:
            chunk = frames[start:start + limit]
            if len(chunk) == 0:
                continue
            windows.append(_Window(owner, chunk, len(chunk), self._run_length(len(chunk))))
        return windows

    # -- model -------------------------------------------------------------
    @torch.inference_mode()
    def _run(self, windows: list[_Window]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        length = windows[0].run_length
        batch = np.full((len(windows), length, windows[0].frames.shape[1]), self.pad_value, dtype=np.float32)
        for row, window in enumerate(windows):
            batch[row, : window.valid] = window.frames[:length]
        inputs = torch.from_numpy(batch).to(self.device, self.dtype)
        with running_at(self.model, length):
            output = self.model(input_values=inputs, output_hidden_states=self.config.layer != -1)
        if self.config.layer == -1:
            hidden = output.last_hidden_state
        else:
            hidden = self.model.layernorm(output.hidden_states[self.config.layer])
        hidden = hidden.float()
        frequency_patches = (self.model.config.num_mel_bins - self.patch_size) // self.model.config.frequency_stride + 1
        time_count = time_patches(length, self.patch_size, self.time_stride)
        patches = hidden[:, 2:].reshape(len(windows), frequency_patches, time_count, -1)
        results = []
        for row, window in enumerate(windows):
            valid_time = min(time_count, time_patches(window.valid, self.patch_size, self.time_stride))
            sequence = patches[row, :, :valid_time].mean(dim=0)
            pooler = (hidden[row, 0] + hidden[row, 1]) / 2
            results.append((pooler.cpu().numpy(), sequence.mean(dim=0).cpu().numpy(), sequence.cpu().numpy()))
        return results

    def embed_features(self, batch: list[Features], batch_size: int = 8) -> list[Embedding]:
        """Embed many recordings; windows of equal run length share a batch (sorted by length)."""
        windows = [w for owner, features in enumerate(batch) for w in self._windows(owner, features.frames)]
        outputs: dict[int, tuple] = {}
        for group in length_batches([w.run_length for w in windows], batch_size):
            for index, result in zip(group, self._run([windows[i] for i in group])):
                outputs[index] = result
        per_owner: dict[int, list[int]] = defaultdict(list)
        for index, window in enumerate(windows):
            per_owner[window.owner].append(index)
        embeddings = []
        for owner in range(len(batch)):
            indices = per_owner[owner]
            weights = np.array([windows[i].valid for i in indices], dtype=np.float64)
            weights /= weights.sum()
            pooler = sum(w * outputs[i][0] for w, i in zip(weights, indices)).astype(np.float32)
            mean = sum(w * outputs[i][1] for w, i in zip(weights, indices)).astype(np.float32)
            sequence = np.concatenate([outputs[i][2] for i in indices]).astype(np.float32)
            pooled = mean if self.config.pool == "mean" else pooler
            embeddings.append(Embedding(pooled, mean, pooler, sequence, len(indices),
                                        [windows[i].run_length for i in indices]))
        return embeddings

    def embed(self, samples: np.ndarray, sample_rate: int) -> Embedding:
        """One recording (any rate; time expansion per the config) -> its embedding."""
        return self.embed_features([self.features(np.asarray(samples, dtype=np.float32), sample_rate)])[0]
