"""Model and training configuration: frozen, hashed into every output's provenance.

No numpy or torch here: the CLI reads these defaults to print ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, prod

KERNEL = 4  # every conv: kernel 4, stride 2, padding 1
# EMA vector quantiser (k-means init, dead-code restart); finite scalar quantisation; residual VQ (``rvq_depth`` EMA
# codebooks of ``codes`` each, on what the levels before left)
QUANTIZERS = ("ema", "fsq", "rvq")
CODE_LAYOUTS = ("grid", "time")  # codes (T', F'); one code per time step (T',), frequency folded into it


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
    dead_code_share: float = 1 / 16  # restart a code whose EMA count is under this share of an even one (quantizer)
    cosine: bool = False  # compare L2-normalised vectors (cosine codes)
    quantizer: str = "ema"  # one of QUANTIZERS
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)  # fsq: levels per dimension; codes = their product (set from them)
    code_layout: str = "grid"  # one of CODE_LAYOUTS
    rvq_depth: int = 4  # rvq: codebooks (levels); a code is this many indices, each of ``codes`` values

    def __post_init__(self):
        object.__setattr__(self, "fsq_levels", tuple(int(level) for level in self.fsq_levels))  # JSON gives a list
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {', '.join(QUANTIZERS)}, got {self.quantizer!r}")
        if self.code_layout not in CODE_LAYOUTS:
            raise ValueError(f"code_layout must be one of {', '.join(CODE_LAYOUTS)}, got {self.code_layout!r}")
        if self.quantizer == "fsq":
            if not self.fsq_levels or min(self.fsq_levels) < 2:
                raise ValueError(f"fsq_levels must be integers >= 2, got {self.fsq_levels}")
            if self.cosine:
                raise ValueError("cosine codes are an option of the ema quantizer, not of fsq")
            object.__setattr__(self, "codes", prod(self.fsq_levels))
        if self.quantizer == "rvq" and self.cosine:
            raise ValueError("cosine codes are an option of the ema quantizer, not of rvq (residuals are not unit vectors)")
        for name in ("n_mels", "hidden", "codes", "code_dim", "downsample_layers", "rvq_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dead_code_share < 1:
            raise ValueError(f"dead_code_share must be in [0, 1), got {self.dead_code_share}")
        if not 0 <= self.decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {self.decay}")

    @classmethod
    def from_dict(cls, values: dict) -> VQVAEConfig:
        """From a saved config.json; ``dead_code_threshold`` (an absolute count, replaced by ``dead_code_share``)
        only steered training, so a model saved with it still encodes as it did."""
        return cls(**{k: v for k, v in values.items() if k != "dead_code_threshold"})

    @property
    def stride(self) -> int:
        return 2 ** self.downsample_layers

    @property
    def frequency_codes(self) -> int:
        """F': code rows along frequency in the grid layout (folded into each code in the time layout)."""
        return ceil(self.n_mels / self.stride)

    @property
    def depth(self) -> int:
        """Indices per code: ``rvq_depth`` for residual VQ (a trailing axis of the saved codes), 1 otherwise."""
        return self.rvq_depth if self.quantizer == "rvq" else 1

    @property
    def learns_codebook(self) -> bool:
        """Whether the quantiser has codebooks to start by k-means (ema, rvq; fsq has none)."""
        return self.quantizer in ("ema", "rvq")

    @property
    def code_tail(self) -> tuple[int, ...]:
        """The saved codes' axes after T': (F',) in the grid layout, () in the time layout, then (depth,) for rvq."""
        tail = (self.frequency_codes,) if self.code_layout == "grid" else ()
        return (*tail, self.rvq_depth) if self.quantizer == "rvq" else tail

    @property
    def code_axes(self) -> str:
        """The saved shape of a file's codes, as the manifest states it."""
        axes = ["T'", "F'"] if self.code_layout == "grid" else ["T'"]
        if self.quantizer == "rvq":
            axes.append("depth")
        return f"({', '.join(axes)})" if len(axes) > 1 else f"({axes[0]},)"

    @property
    def codebook_entries(self) -> int:
        """Code vectors in all codebooks: what usage and perplexity count over (rvq: level l's code k is entry
        l * codes + k, so a level left unused counts as unused)."""
        return self.codes * self.depth

    def manifest_extra(self) -> dict:
        """What each manifest row states about its codes: quantiser, layout and saved shape."""
        extra = {"quantizer": self.quantizer, "code_layout": self.code_layout, "code_axes": self.code_axes}
        if self.code_layout == "grid":
            extra["frequency_bins_per_code"] = self.stride
        if self.quantizer == "rvq":
            extra["rvq_depth"] = self.rvq_depth
        return extra

    @property
    def receptive_field(self) -> int:
        """Mel frames one code sees: windows that overlap by this much give the codes of the whole file."""
        return 1 + (KERNEL - 1) * (self.stride - 1)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 8
    lr: float = 3e-4
    warmup_steps: int = 0  # linear learning-rate warm-up (the GPU recipe uses one: device_recipe)
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
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
