"""Model and training configuration: frozen, hashed into every output's provenance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VQVAEConfig:
    """The default is the reference recipe's shape (two stride-2 convs, 256 codes of dim 128),
    so results compare; the codebook is kept alive by k-means init, EMA and dead-code restart."""

    n_mels: int = 128
    hidden: int = 128
    codes: int = 256
    code_dim: int = 128
    downsample_layers: int = 2  # stride-2 convs: time and frequency shrink by 2**layers
    decay: float = 0.9  # EMA decay of code statistics (0.99 tracked the moving encoder too slowly: 12% batch usage at step 250 vs 84%)
    commitment: float = 0.25
    dead_code_threshold: float = 2.0  # EMA usage count under which a code is restarted
    cosine: bool = False  # compare L2-normalised vectors (cosine codes)

    @property
    def stride(self) -> int:
        return 2 ** self.downsample_layers


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 8
    lr: float = 3e-4
    crop_frames: int = 128
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 25
    kmeans_init_vectors: int = 20_000
    kmeans_iters: int = 20
    holdout_fraction: float = 0.1
