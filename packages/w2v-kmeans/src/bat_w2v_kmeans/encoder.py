"""A Hugging Face wav2vec 2.0 / HuBERT / WavLM / data2vec-audio checkpoint as the runner's model.

The encoder decides what the decoding processes must make (``prepare``: windows at its rate,
normalised as its feature extractor does, padded to its shortest input) and runs batches of
those windows (``hidden_states``); ``bat_w2v_kmeans.forward`` turns its outputs into what a
command needs (sampled rows, frames, tokens). Each window runs at its own bucketed length, so a
window's frames never depend on which windows share its batch. Checkpoints whose extractor
returns an attention mask get one; the others (wav2vec2-base, HuBERT-base: group-normalised
convolutions) get zero padding, which is the same for a window whatever its batch mates.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from bat_core.device import compute_dtype, resolve_device
from bat_core.errors import BatError, ConfigMismatchError, ModelNotFoundError
from bat_core.pretrained import load_pretrained
from bat_core.runner import AudioPrepare, Piece
from bat_core.time_expansion import TimeExpansion
from bat_w2v_kmeans.defaults import (
    BUCKET_SECONDS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL,
    OVERLAP_SECONDS,
    SUPPORTED_MODEL_TYPES,
    WINDOW_SECONDS,
)
from bat_w2v_kmeans.pieces import WindowPieces

log = logging.getLogger(__name__)

# Audio seconds per forward pass on CPU: a batch of 8 s runs as fast as one of 16 s (7 s clips, base
# model, 2 threads) with ~150 MB less peak memory.
CPU_BATCH_SECONDS = 8.0
MPS_BATCH_SECONDS = 16.0
# On CUDA a batch holds as much audio as GPU_MEMORY_FRACTION of the free memory allows, by the estimate of
# ``activation_bytes_per_second``, and at most GPU_BATCH_SECONDS. An estimate too high only gives smaller
# batches; one too low is caught by the runner, which halves the batch on out-of-memory.
GPU_MEMORY_FRACTION = 0.5
GPU_BATCH_SECONDS = 320.0
# Windows per batch on CUDA unless --batch-size says otherwise: so many that the seconds above bind. Each
# forward costs ~20 ms whatever its size: at 8 windows per batch an H100 ran the demo corpus cycled to 500
# files in 202 forwards of ~25 s of audio (1072 audio-s/s), where batches of 240 s had given 6108; and real
# recordings are mostly short clips (shared/bats x15: median 0.4 s of model audio).
GPU_BATCH_PIECES = 1024
# Weights a speech checkpoint may lack and still be the model it claims to be (used only in pretraining).
OPTIONAL_WEIGHTS = ("masked_spec_embed",)


class SpeechEncoder:
    """A speech encoder checkpoint, its feature extractor, where it runs and how recordings reach it."""

    def __init__(self, model, extractor, model_id: str, layer: int | None = None, device: str | torch.device = "cpu",
                 window_seconds: float = WINDOW_SECONDS, overlap_seconds: float = OVERLAP_SECONDS,
                 bucket_seconds: float = BUCKET_SECONDS, batch_size: int | None = None,
                 max_batch_seconds: float | None = None, precision: str = "auto"):
        self.model_id = model_id
        self.extractor = extractor
        self.weights_fingerprint = weights_fingerprint(model)  # of the weights as loaded, before any cast
        self.device = torch.device(device)
        self.dtype = compute_dtype(self.device, precision)
        self.model = model.eval().to(device=self.device, dtype=self.dtype)
        self.num_layers = int(model.config.num_hidden_layers)
        if layer is not None and not 0 <= layer <= self.num_layers:
            raise ConfigMismatchError(f"--layer must be 0..{self.num_layers} for {model_id} (0: CNN features + "
                                      f"projection), got {layer}")
        self.layer = layer
        if batch_size is None:  # auto: on a GPU the batch's seconds of audio bind, not its count of windows
            batch_size = GPU_BATCH_PIECES if self.device.type == "cuda" else DEFAULT_BATCH_SIZE
        if batch_size < 1:
            raise BatError(f"--batch-size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        frame = self.samples_per_frame
        self.window = max(1, round(window_seconds * self.sample_rate / frame)) * frame
        self.hop = self.window - round(overlap_seconds * self.sample_rate / frame) * frame
        if self.hop <= 0 or self.hop > self.window:
            raise BatError(f"--window-seconds must be more than the {overlap_seconds:g} s overlap of neighbouring "
                           f"windows, got {window_seconds:g}")
        self.bucket = max(frame, int(bucket_seconds * self.sample_rate) // frame * frame)
        self.max_batch_seconds = max_batch_seconds
        self._max_batch_samples: int | None = None

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_MODEL, layer: int | None = None, device: str = "auto",
                        **kwargs) -> SpeechEncoder:
        """Load by Hugging Face name or folder; a checkpoint of another architecture, or one missing weights,
        is refused (never run with random weights)."""
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        name = str(name_or_path)
        config = load_pretrained(AutoConfig.from_pretrained, name, "speech encoder config")
        model_type = getattr(config, "model_type", "?")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ModelNotFoundError(
                f"{name} is a {model_type!r} model; bat-w2v-kmeans needs a self-supervised speech encoder of type "
                f"{', '.join(SUPPORTED_MODEL_TYPES)}: pass --model with one of those")
        extractor = load_pretrained(AutoFeatureExtractor.from_pretrained, name, "feature extractor")

        def load_model(path: str, **options):
            return AutoModel.from_pretrained(path, config=config, output_loading_info=True, **options)

        model, loading = load_pretrained(load_model, name, "speech encoder")
        missing = sorted(key for key in loading.get("missing_keys", ()) if not key.endswith(OPTIONAL_WEIGHTS))
        if missing:
            raise ModelNotFoundError(
                f"{name} lacks {len(missing)} weights of a {model_type} encoder ({', '.join(missing[:3])}...): it would "
                "run with random weights; pass --model a folder with the whole checkpoint")
        return cls(model, extractor, name, layer, resolve_device(device), **kwargs)

    def __getstate__(self) -> dict:
        """Pickled (for a Ray actor) as config + weights: wav2vec2's weight-normed convolution is a parametrized
        module, which torch pickles only through its state_dict."""
        state = dict(self.__dict__)
        model = state.pop("model")
        state["_model_state"] = (model.config, {key: value.cpu() for key, value in model.state_dict().items()})
        return state

    def __setstate__(self, state: dict) -> None:
        from transformers import AutoModel

        config, weights = state.pop("_model_state")
        self.__dict__.update(state)
        model = AutoModel.from_config(config)
        model.load_state_dict(weights)
        self.model = model.eval().to(device=self.device, dtype=self.dtype)

    # -- facts about the checkpoint ----------------------------------------------------------------
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

    @property
    def precision(self) -> str:
        """The arithmetic the model runs in (``float32``, ``bfloat16``...): part of every output's provenance."""
        return str(self.dtype).removeprefix("torch.")

    def fingerprint(self) -> str:
        """Identifies the weights, all of them (not the name): a local copy of the same model matches."""
        return self.weights_fingerprint

    def frame_count(self, n_samples: int) -> int:
        length = n_samples
        for kernel, stride in zip(self.model.config.conv_kernel, self.model.config.conv_stride):
            length = (length - kernel) // stride + 1
        return max(0, length)

    def frame_count_min_samples(self) -> int:
        """Shortest input giving one frame (400 samples for the base models)."""
        length = 1
        for kernel, stride in reversed(list(zip(self.model.config.conv_kernel, self.model.config.conv_stride))):
            length = (length - 1) * stride + kernel
        return length

    def settings(self) -> dict:
        """What, besides the input, determines the frames: the weights, the layer, the windows, the arithmetic."""
        return {"model_fingerprint": self.fingerprint(), "layer": self.layer_name,
                "model_sample_rate": self.sample_rate, "samples_per_frame": self.samples_per_frame,
                "window_samples": self.window, "hop_samples": self.hop, "bucket_samples": self.bucket,
                "normalisation": "per window" if self.do_normalize else "none", "precision": self.precision}

    @property
    def do_normalize(self) -> bool:
        return bool(getattr(self.extractor, "do_normalize", False))

    # -- what the decoding processes make ----------------------------------------------------------
    def pieces(self) -> WindowPieces:
        return WindowPieces(window=self.window, hop=self.hop, bucket=self.bucket,
                            min_length=self.frame_count_min_samples(), do_normalize=self.do_normalize,
                            padding_value=float(getattr(self.extractor, "padding_value", 0.0)))

    def prepare(self, expansion: TimeExpansion) -> AudioPrepare:
        """Recording -> windows at this encoder's rate (picklable, numpy only: runs in worker processes)."""
        return AudioPrepare(self.pieces(), self.sample_rate, expansion)

    # -- batches ----------------------------------------------------------------------------------
    def activation_bytes_per_second(self) -> float:
        """Estimated peak memory of a forward pass per second of audio in a batch.

        The first convolution's output (``conv_dim[0]`` channels at ``sample_rate / conv_stride[0]``
        positions) is held about 4 times (convolution, norm, GELU, next input): 13 of the ~16 MB per
        second of a base model in bf16. Then the transformer: every layer's hidden states (kept for
        ``--layer``), ~8 working copies of one layer's and the feed-forward's width, and one window's
        attention matrix per head (eager attention)."""
        config = self.model.config
        element = torch.empty((), dtype=self.dtype).element_size()
        convolution = self.sample_rate / config.conv_stride[0] * config.conv_dim[0] * element * 4
        frames = self.sample_rate / self.samples_per_frame
        width = self.hidden_size * (self.num_layers + 1 + 8) + int(config.intermediate_size)
        attention = int(config.num_attention_heads) * (self.window / self.samples_per_frame)
        return convolution + frames * element * (width + attention)

    def max_batch_samples(self) -> int:
        """Summed samples per batch; decided once per encoder, so every pass of a run batches alike."""
        if self._max_batch_samples is None:
            seconds = self.max_batch_seconds
            if seconds is None:
                if self.device.type == "cuda":
                    free, _ = torch.cuda.mem_get_info(self.device)
                    seconds = min(GPU_BATCH_SECONDS, GPU_MEMORY_FRACTION * free / self.activation_bytes_per_second())
                    log.info("batches of at most %.0f s of audio (%.1f GiB free on %s)", seconds, free / 2**30,
                             self.device)
                else:
                    seconds = MPS_BATCH_SECONDS if self.device.type == "mps" else CPU_BATCH_SECONDS
            self._max_batch_samples = max(1, int(seconds * self.sample_rate))
        return self._max_batch_samples

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        """Host -> device without making the host wait: pinned memory and a non-blocking copy on CUDA."""
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def model_inputs(self, batch: list[Piece]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The model's input values (padded rows, on the device, in the model's dtype) and keyword inputs
        (the attention mask where the extractor uses one) for a batch of pieces of one run length."""
        length = batch[0].length
        inputs = np.full((len(batch), length), float(getattr(self.extractor, "padding_value", 0.0)), dtype=np.float32)
        for row, piece in enumerate(batch):
            inputs[row, : len(piece.data)] = piece.data
        kwargs = {}
        if self.uses_attention_mask:
            mask = np.zeros((len(batch), length), dtype=np.int32)
            for row, piece in enumerate(batch):
                mask[row, : len(piece.data)] = 1
            kwargs["attention_mask"] = self.to_device(mask)
        return self.to_device(inputs).to(self.dtype), kwargs

    @torch.inference_mode()
    def hidden_states(self, batch: list[Piece]) -> tuple[torch.Tensor, list[int]]:
        """(batch, frames, hidden) outputs of the chosen layer, on the device and not waited for, and each
        piece's count of real frames. Pieces of a batch share one run length (the runner's batches)."""
        values, kwargs = self.model_inputs(batch)
        output = self.model(values, output_hidden_states=self.layer is not None, **kwargs)
        hidden = output.last_hidden_state if self.layer is None else output.hidden_states[self.layer]
        return hidden, [self.frame_count(len(piece.data)) for piece in batch]


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over every weight tensor's dtype, shape and bytes, in an order that does not depend on the
    tensors' names (which differ between transformers versions for the same weights)."""
    digests = []
    for tensor in model.state_dict().values():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest = hashlib.sha256(f"{flat.dtype}:{tuple(tensor.shape)}:".encode())
        digest.update(flat.view(torch.uint8).numpy())
        digests.append(digest.digest())
    return hashlib.sha256(b"".join(sorted(digests))).hexdigest()[:16]
