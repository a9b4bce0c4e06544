"""Model and training configuration: frozen, hashed into every output's provenance.

No numpy or torch here: the CLI reads these defaults to print ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass

KERNEL = 4  # every conv: kernel 4, stride 2, padding 1


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

    def __post_init__(self):
        for name in ("n_mels", "hidden", "codes", "code_dim", "downsample_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {self.decay}")

    @property
    def stride(self) -> int:
        return 2 ** self.downsample_layers

    @property
    def receptive_field(self) -> int:
        """Mel frames one code sees: windows that overlap by this much give the codes of the whole file."""
        return 1 + (KERNEL - 1) * (self.stride - 1)


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

    def __post_init__(self):
        for name in ("steps", "batch_size", "crop_frames", "checkpoint_every", "log_every", "kmeans_init_vectors",
                     "kmeans_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
