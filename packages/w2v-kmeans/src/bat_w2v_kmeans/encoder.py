"""Frame features from a Hugging Face wav2vec 2.0 / HuBERT / WavLM checkpoint, batched by length.

Each waveform (or window of a long one) runs at its own length rounded up to a bucket, so
padding stays small and a file's frames never depend on which files share its batch.
Checkpoints trained with an attention mask get one; the others (wav2vec2-base, HuBERT-base:
group-normalised feature encoders) get zero padding, which is the same for a given clip
whatever its batch mates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bat_core.batching import bucket_length, length_batches
from bat_core.device import compute_dtype, resolve_device
from bat_core.errors import ConfigMismatchError
from bat_core.pretrained import load_pretrained
from bat_core.windows import stitch_frames, window_bounds

DEFAULT_MODEL = "facebook/wav2vec2-base"
# Audio seconds per forward pass. On CPU a batch of 8 s runs as fast as one of 16 s (7 s clips,
# base model, 2 threads) with ~150 MB less peak memory; GPUs want wider batches.
CPU_BATCH_SECONDS = 8.0
ACCELERATOR_BATCH_SECONDS = 16.0
# Long recordings reach the model in windows of this much audio: about the longest crop wav2vec2 and
# HuBERT saw in pretraining (250,000 samples). A 60 s input in 30 s windows took 25% more time and
# 300 MB more peak memory than in 15 s windows (base model, CPU).
WINDOW_SECONDS = 15.0


@dataclass
class _Chunk:
    owner: int
    samples: np.ndarray
    run_length: int


class SpeechEncoder:
    def __init__(self, model, extractor, model_id: str, layer: int | None = None, device: str | torch.device = "cpu",
                 window_seconds: float = WINDOW_SECONDS, overlap_seconds: float = 1.0, bucket_seconds: float = 0.25,
                 max_batch_seconds: float | None = None, precision: str = "auto"):
        self.model = model.eval()
        self.extractor = extractor
        self.model_id = model_id
        self.device = torch.device(device)
        self.dtype = compute_dtype(self.device, precision)
        self.model.to(device=self.device, dtype=self.dtype)
        self.num_layers = int(model.config.num_hidden_layers)
        if layer is not None and not 0 <= layer <= self.num_layers:
            raise ConfigMismatchError(f"--layer must be 0..{self.num_layers} for {model_id} (0: CNN features + projection), got {layer}")
        self.layer = layer
        self.window = int(window_seconds * self.sample_rate)
        self.hop = self.window - int(overlap_seconds * self.sample_rate)
        if max_batch_seconds is None:
            max_batch_seconds = CPU_BATCH_SECONDS if self.device.type == "cpu" else ACCELERATOR_BATCH_SECONDS
        self.max_batch_samples = int(max_batch_seconds * self.sample_rate)  # bounds activation memory
        self.bucket = max(self.samples_per_frame, int(bucket_seconds * self.sample_rate) // self.samples_per_frame * self.samples_per_frame)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_MODEL, layer: int | None = None, device: str = "auto",
                        **kwargs) -> SpeechEncoder:
        from transformers import AutoFeatureExtractor, AutoModel

        name = str(name_or_path)
        extractor = load_pretrained(AutoFeatureExtractor.from_pretrained, name, "feature extractor")
        model = load_pretrained(AutoModel.from_pretrained, name, "speech encoder")
        return cls(model, extractor, name, layer, resolve_device(device), **kwargs)

    # -- facts about the checkpoint ------------------------------------------
    @property
    def sample_rate(self) -> int:
        return int(self.extractor.sampling_rate)

    @property
    def samples_per_frame(self) -> int:
        return int(np.prod(self.model.config.conv_stride))

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def uses_attention_mask(self) -> bool:
        return bool(getattr(self.extractor, "return_attention_mask", False))

    @property
    def layer_name(self) -> str:
        return "last" if self.layer is None else str(self.layer)

    def fingerprint(self) -> str:
        """Identifies the weights (not the name): a local copy of the same model matches."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items())[:4]:
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        digest.update(str(self.model.config.to_dict().get("hidden_size")).encode())
        return digest.hexdigest()[:16]

    def frame_count(self, n_samples: int) -> int:
        length = n_samples
        for kernel, stride in zip(self.model.config.conv_kernel, self.model.config.conv_stride):
            length = (length - kernel) // stride + 1
        return max(0, length)

    # -- frames -----------------------------------------------------------------
    def normalise(self, samples: np.ndarray) -> np.ndarray:
        """The extractor's own normalisation, over the whole recording (not per window)."""
        samples = np.asarray(samples, dtype=np.float32)
        if getattr(self.extractor, "do_normalize", False):
            samples = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)
        return samples

    def frames(self, waveforms: list[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """(T_i, hidden) float32 frames for each waveform at ``sample_rate`` (normalised here)."""
        minimum = self.frame_count_min_samples()
        chunks: list[_Chunk] = []
        bounds_by_owner: dict[int, list[tuple[int, int]]] = {}
        for owner, waveform in enumerate(waveforms):
            waveform = self.normalise(waveform)
            if len(waveform) < minimum:
                waveform = np.pad(waveform, (0, minimum - len(waveform)))
            bounds = window_bounds(len(waveform), self.window, self.hop)
            bounds_by_owner[owner] = bounds
            for start, end in bounds:
                chunks.append(_Chunk(owner, waveform[start:end], bucket_length(end - start, self.bucket, minimum, self.window)))
        outputs: dict[int, np.ndarray] = {}
        for group in length_batches([c.run_length for c in chunks], batch_size, self.max_batch_samples):
            for index, frames in zip(group, self._run([chunks[i] for i in group])):
                outputs[index] = frames
        results, cursor = [], 0
        for owner in range(len(waveforms)):
            count = len(bounds_by_owner[owner])
            pieces = [outputs[i] for i in range(cursor, cursor + count)]
            results.append(stitch_frames(pieces, bounds_by_owner[owner], self.samples_per_frame))
            cursor += count
        return results

    def frame_count_min_samples(self) -> int:
        """Shortest input giving one frame (400 samples for the base models)."""
        length = 1
        for kernel, stride in reversed(list(zip(self.model.config.conv_kernel, self.model.config.conv_stride))):
            length = (length - 1) * stride + kernel
        return length

    @torch.inference_mode()
    def _run(self, chunks: list[_Chunk]) -> list[np.ndarray]:
        length = chunks[0].run_length
        batch = torch.zeros(len(chunks), length)
        mask = torch.zeros(len(chunks), length, dtype=torch.long)
        for row, chunk in enumerate(chunks):
            batch[row, : len(chunk.samples)] = torch.from_numpy(chunk.samples)
            mask[row, : len(chunk.samples)] = 1
        kwargs = {"attention_mask": mask.to(self.device)} if self.uses_attention_mask else {}
        output = self.model(batch.to(self.device, self.dtype), output_hidden_states=self.layer is not None, **kwargs)
        hidden = output.last_hidden_state if self.layer is None else output.hidden_states[self.layer]
        hidden = hidden.float().cpu().numpy()
        return [hidden[row, : self.frame_count(len(chunk.samples))] for row, chunk in enumerate(chunks)]
