"""bat-vqvae: a VQ-VAE on log-mel spectrograms of bat recordings -> discrete codes ``(T', F')``.

Light on purpose: the runner's worker processes import this package to unpickle the mel-window
prepare, and must not import torch. The public names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bat_vqvae.__about__ import __version__

_EXPORTS = {
    "TrainConfig": "bat_vqvae.config",
    "VQVAEConfig": "bat_vqvae.config",
    "VQVAETokenizer": "bat_vqvae.artefact",
    "encode_dataset": "bat_vqvae.encode",
    "reconstruct_file": "bat_vqvae.reconstruct",
    "TrainResult": "bat_vqvae.training",
    "train": "bat_vqvae.training",
}

if TYPE_CHECKING:
    from bat_vqvae.artefact import VQVAETokenizer
    from bat_vqvae.config import TrainConfig, VQVAEConfig
    from bat_vqvae.encode import encode_dataset
    from bat_vqvae.reconstruct import reconstruct_file
    from bat_vqvae.training import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "VQVAEConfig", "VQVAETokenizer", "__version__", "encode_dataset",
           "reconstruct_file", "train"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bat_vqvae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
