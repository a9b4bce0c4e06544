"""What decides an embedding; hashed (with the weights and the precision) into every manifest row."""

from __future__ import annotations

from dataclasses import dataclass, field

from bat_ast_embed.defaults import DEFAULT_MODEL, POOLS
from bat_core.time_expansion import TimeExpansion

__all__ = ["DEFAULT_MODEL", "POOLS", "EmbedConfig"]


@dataclass(frozen=True)
class EmbedConfig:
    """``max_frames``: None = the checkpoint's trained length (fixed, as trained); ``"auto"`` =
    each clip at the length it needs, rounded up to ``bucket_frames``; an int = that length.
    Clips longer than the length in force are embedded in windows and pooled."""

    model: str = DEFAULT_MODEL
    max_frames: int | str | None = None
    bucket_frames: int = 64
    pool: str = "pooler"
    layer: int = -1  # index into the hidden states: 0 = embeddings, -1 = last layer
    sequence: bool = False
    time_expansion: TimeExpansion = field(default_factory=TimeExpansion)

    def __post_init__(self):
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        if not (self.max_frames is None or self.max_frames == "auto" or (isinstance(self.max_frames, int) and self.max_frames >= 16)):
            raise ValueError(f"max_frames must be 'auto', None or an integer >= 16 (one patch), got {self.max_frames!r}")
        if self.bucket_frames < 1:
            raise ValueError("bucket_frames must be >= 1")
