"""Where bat-vqvae's outputs and models live; ``--tag NAME`` puts a configuration beside the default one.

No numpy here: the CLI resolves these before it loads anything.
"""

from __future__ import annotations

from pathlib import Path

from bat_core.paths import ProjectPaths, tagged

REPRESENTATION = "vqvae"
FILE_PATTERN = "vqvae_{stem}.npy"


def representation(tag: str | None = None) -> str:
    """``vqvae``, or ``vqvae-NAME`` under ``--tag NAME`` (its manifest, lock and codes folder)."""
    return tagged(REPRESENTATION, tag)


def tokens_dir(paths: ProjectPaths, tag: str | None = None) -> Path:
    """``derived/tokens/vqvae/`` (the seed layout) or ``derived/tokens/vqvae-NAME/``."""
    return paths.tokens_dir / representation(tag)


def default_model_dir(paths: ProjectPaths, tag: str | None = None) -> Path:
    """``derived/models/vqvae`` or ``derived/models/vqvae-NAME``."""
    return paths.models_dir / representation(tag)


def reconstructions_dir(paths: ProjectPaths, tag: str | None = None) -> Path:
    return paths.derived / f"{representation(tag)}_reconstructions"
