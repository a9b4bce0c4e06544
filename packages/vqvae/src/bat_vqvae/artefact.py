"""The trained tokenizer as a directory (``config.json`` + ``model.safetensors``) and its Python API."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bat_core.errors import ConfigMismatchError, ModelNotFoundError
from bat_core.mels import MelConfig, log_mel
from bat_core.time_expansion import convert_for_model
from bat_core.windows import windows_of
from bat_vqvae import mel_windows
from bat_vqvae.__about__ import __version__
from bat_vqvae.config import VQVAEConfig
from bat_vqvae.guard import require_finite_weights
from bat_vqvae.model import VQVAE
from bat_vqvae.normalizer import MelNormalizer
from bat_vqvae.quantizer import restore_flags

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "bat-vqvae"


def code_dtype(codebook_size: int) -> np.dtype:
    """int16 codes (the documented format) unless the codebook outgrows them."""
    return np.dtype(np.int16 if codebook_size <= np.iinfo(np.int16).max + 1 else np.int32)


def is_trained_model(directory: str | Path) -> bool:
    directory = Path(directory)
    return (directory / CONFIG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file()


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
        """Weights, then config.json, each written aside and renamed: a reader never sees half a model,
        and weights with a NaN are refused."""
        directory = Path(directory)
        require_finite_weights(self.model, str(directory))
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        tensors["normalizer.mean"] = torch.from_numpy(self.normalizer.mean)
        tensors["normalizer.std"] = torch.from_numpy(self.normalizer.std)
        tensors = {k: (v.float() if v.dtype == torch.bool else v) for k, v in tensors.items()}
        temporary = directory / f".{WEIGHTS_FILE}.{os.getpid()}.tmp"
        save_file(tensors, str(temporary))
        os.replace(temporary, directory / WEIGHTS_FILE)
        self.metadata["weights_sha256"] = _file_sha256(directory / WEIGHTS_FILE)
        self.save_config(directory)
        return directory

    def save_config(self, directory: str | Path) -> Path:
        """Rewrite config.json only (metadata learnt after the weights were saved: hold-out scores)."""
        config = {
            "format": FORMAT,
            "package_version": __version__,
            "model": asdict(self.model.config),
            "mel": asdict(self.mel_config),
            **{k: v for k, v in self.metadata.items() if k != "weights_sha256"},
        }
        path = Path(directory) / CONFIG_FILE
        temporary = path.with_name(f".{CONFIG_FILE}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(config, indent=2, default=str, allow_nan=False))
        os.replace(temporary, path)
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> VQVAETokenizer:
        directory = Path(directory)
        if not is_trained_model(directory):
            raise ModelNotFoundError(
                f"no trained VQ-VAE in {directory} (expected {CONFIG_FILE} and {WEIGHTS_FILE}); "
                "train one with `bat-vqvae train` or pass --model PATH"
            )
        config = json.loads((directory / CONFIG_FILE).read_text())
        if config.get("format") != FORMAT:
            raise ConfigMismatchError(f"{directory} holds no bat-vqvae model (format {config.get('format')!r})")
        model = VQVAE(VQVAEConfig.from_dict(config["model"]))
        tensors = load_file(str(directory / WEIGHTS_FILE))
        state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        state = restore_flags(state)
        model.load_state_dict(state)
        normalizer = MelNormalizer(tensors["normalizer.mean"].numpy(), tensors["normalizer.std"].numpy())
        metadata = {k: v for k, v in config.items() if k not in ("format", "package_version", "model", "mel")}
        metadata["weights_sha256"] = _file_sha256(directory / WEIGHTS_FILE)
        return cls(model, normalizer, MelConfig.from_dict(config["mel"]), metadata).to(device)

    # -- codes ----------------------------------------------------------------
    def window_frames(self) -> tuple[int, int]:
        """``(window, hop)`` in mel frames, as every encoding path cuts a recording."""
        return mel_windows.window_frames(self.config.stride, self.config.receptive_field)

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """Codes ``(T', F')`` of a log-mel ``(n_mels, T)`` as bat-core writes it (a memory map is fine:
        it is read one window at a time, the same windows ``bat-vqvae encode`` makes)."""
        if mel.ndim != 2 or mel.shape[0] != self.config.n_mels:
            raise ValueError(f"expected a log-mel of shape ({self.config.n_mels}, T), got {mel.shape}")
        window, hop = self.window_frames()
        codes = []
        for piece in windows_of(mel.T, window, hop):
            batch = torch.from_numpy(self.normalizer.normalise_frames(piece.data)).unsqueeze(0).to(self.device)
            window_codes = self.model.encode(batch)[0].cpu().numpy()
            codes.append(window_codes[piece.span.owned(len(window_codes), self.config.stride)])
        return np.concatenate(codes).astype(code_dtype(self.config.codes))

    def decode(self, codes: np.ndarray, n_frames: int | None = None) -> np.ndarray:
        """Log-mel ``(n_mels, T)`` from codes ``(T', F')`` (in one forward: for a file's worth of codes)."""
        tensor = torch.from_numpy(np.asarray(codes, dtype=np.int64)).unsqueeze(0).to(self.device)
        normalised = self.model.decode(tensor, self.config.n_mels, n_frames)[0].cpu().numpy()
        return self.normalizer.denormalise(normalised)

    def reconstruct(self, mel: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(mel), n_frames=mel.shape[1])

    def mel_of(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The log-mel this model was trained on, from a raw recording in memory (time expansion included)."""
        converted, _ = convert_for_model(samples, sample_rate, self.mel_config.sample_rate, self.mel_config.time_expansion)
        return log_mel(converted, self.mel_config)

    def encode_waveform(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.encode(self.mel_of(samples, sample_rate))

    @property
    def fingerprint(self) -> str:
        """Identifies these weights in manifests: retraining means re-encoding."""
        return self.metadata.get("weights_sha256", "unsaved")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
