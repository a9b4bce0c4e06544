"""bat-vqvae: a VQ-VAE on log-mel spectrograms of bat recordings -> discrete codes ``(T', F')``."""

from bat_vqvae.__about__ import __version__
from bat_vqvae.artefact import VQVAETokenizer
from bat_vqvae.config import TrainConfig, VQVAEConfig
from bat_vqvae.encode import encode_dataset
from bat_vqvae.train import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "VQVAEConfig", "VQVAETokenizer", "__version__", "encode_dataset", "train"]
