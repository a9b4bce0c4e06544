"""The trained tokenizer as a directory (``config.json`` + ``model.safetensors``) and its Python API."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bat_core.errors import ConfigMismatchError, ModelNotFoundError
from bat_core.mels import MelConfig, log_mel
from bat_core.time_expansion import convert_for_model
from bat_core.windows import stitch_frames, window_bounds
from bat_vqvae.__about__ import __version__
from bat_vqvae.config import VQVAEConfig
from bat_vqvae.data import MelNormalizer
from bat_vqvae.model import VQVAE

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ENCODE_CHUNK_FRAMES = 4096  # long recordings are encoded in chunks with overlap, then stitched
CHUNK_OVERLAP_FRAMES = 64


class VQVAETokenizer:
    """Mel spectrogram <-> discrete codes ``(T', F')``; ``codes.ravel()`` is the flat token order."""

    def __init__(self, model: VQVAE, normalizer: MelNormalizer, mel_config: MelConfig, metadata: dict | None = None):
        self.model = model.eval()
        self.normalizer = normalizer
        self.mel_config = mel_config
        self.metadata = dict(metadata or {})
        if mel_config.n_mels != model.config.n_mels:
            raise ConfigMismatchError(f"model expects {model.config.n_mels} mel bands, mel config has {mel_config.n_mels}")

    @property
    def config(self) -> VQVAEConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> VQVAETokenizer:
        self.model.to(device)
        return self

    # -- persistence ---------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        tensors["normalizer.mean"] = torch.from_numpy(self.normalizer.mean)
        tensors["normalizer.std"] = torch.from_numpy(self.normalizer.std)
        tensors = {k: (v.float() if v.dtype == torch.bool else v) for k, v in tensors.items()}
        save_file(tensors, str(directory / WEIGHTS_FILE))
        config = {
            "format": "bat-vqvae",
            "package_version": __version__,
            "model": asdict(self.model.config),
            "mel": asdict(self.mel_config),
            **self.metadata,
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> VQVAETokenizer:
        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
            raise ModelNotFoundError(
                f"no trained VQ-VAE in {directory} (expected {CONFIG_FILE} and {WEIGHTS_FILE}); "
                "train one with `bat-vqvae train` or pass --model PATH"
            )
        config = json.loads((directory / CONFIG_FILE).read_text())
        if config.get("format") != "bat-vqvae":
            raise ConfigMismatchError(f"{directory} holds no bat-vqvae model (format {config.get('format')!r})")
        model = VQVAE(VQVAEConfig(**config["model"]))
        tensors = load_file(str(directory / WEIGHTS_FILE))
        state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        state["quantizer.initted"] = state["quantizer.initted"].bool()
        model.load_state_dict(state)
        normalizer = MelNormalizer(tensors["normalizer.mean"].numpy(), tensors["normalizer.std"].numpy())
        metadata = {k: v for k, v in config.items() if k not in ("format", "package_version", "model", "mel")}
        metadata["weights_sha256"] = hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]
        return cls(model, normalizer, MelConfig.from_dict(config["mel"]), metadata).to(device)

    # -- codes ----------------------------------------------------------------
    def encode(self, mel: np.ndarray) -> np.ndarray:
        """Codes ``(T', F')`` (int16) of a log-mel ``(n_mels, T)`` as bat-core writes it."""
        if mel.ndim != 2 or mel.shape[0] != self.config.n_mels:
            raise ValueError(f"expected a log-mel of shape ({self.config.n_mels}, T), got {mel.shape}")
        normalised = self.normalizer.normalise(mel)
        bounds = window_bounds(normalised.shape[1], ENCODE_CHUNK_FRAMES, ENCODE_CHUNK_FRAMES - CHUNK_OVERLAP_FRAMES)
        chunks = []
        for start, end in bounds:
            batch = torch.from_numpy(normalised[:, start:end]).unsqueeze(0).to(self.device)
            chunks.append(self.model.encode(batch)[0].cpu().numpy())
        codes = stitch_frames(chunks, bounds, self.config.stride)
        return codes.astype(np.int16 if self.config.codes <= np.iinfo(np.int16).max else np.int32)

    def decode(self, codes: np.ndarray, n_frames: int | None = None) -> np.ndarray:
        """Log-mel ``(n_mels, T)`` from codes ``(T', F')``."""
        tensor = torch.from_numpy(np.asarray(codes, dtype=np.int64)).unsqueeze(0).to(self.device)
        normalised = self.model.decode(tensor, self.config.n_mels, n_frames)[0].cpu().numpy()
        return self.normalizer.denormalise(normalised)

    def reconstruct(self, mel: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(mel), n_frames=mel.shape[1])

    def mel_of(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The log-mel this model was trained on, from a raw recording (time expansion included)."""
        converted, _ = convert_for_model(samples, sample_rate, self.mel_config.sample_rate, self.mel_config.time_expansion)
        return log_mel(converted, self.mel_config)

    def encode_waveform(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.encode(self.mel_of(samples, sample_rate))

    @property
    def fingerprint(self) -> str:
        """Identifies these weights in manifests: retraining means re-encoding."""
        return self.metadata.get("weights_sha256", "unsaved")
