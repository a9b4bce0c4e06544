"""The on-disk layout of a project, in one place.

Seed-compatible: ``derived/mels_48k/<stem>.npy``, ``derived/tokens/``,
``derived/ast_features/``. ``derived`` may live outside the project root so a
read-only data folder still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPaths:
    """Where inputs are read from and outputs written to."""

    root: Path
    derived: Path

    @classmethod
    def for_root(cls, root: str | Path, derived: str | Path | None = None) -> ProjectPaths:
        root_path = Path(root).expanduser().resolve()
        derived_path = Path(derived).expanduser().resolve() if derived else root_path / "derived"
        return cls(root=root_path, derived=derived_path)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def annotations_csv(self) -> Path:
        return self.data_dir / "annotations.csv"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def tokens_dir(self) -> Path:
        return self.derived / "tokens"

    @property
    def ast_features_dir(self) -> Path:
        return self.derived / "ast_features"

    @property
    def models_dir(self) -> Path:
        """Trained artefacts (codebooks, VQ-VAE weights) made from this project."""
        return self.derived / "models"

    @property
    def manifests_dir(self) -> Path:
        return self.derived / "manifests"

    @property
    def report_dir(self) -> Path:
        return self.derived / "report"

    def manifest_path(self, representation: str) -> Path:
        return self.manifests_dir / f"{representation}.parquet"

    @property
    def cache_dir(self) -> Path:
        """Intermediate results a later step reads (e.g. encoder frames between a fit and its encode)."""
        return self.derived / "cache"


def tagged(name: str, tag: str | None) -> str:
    """A representation's (or model folder's) name under ``--tag``: ``w2v_kmeans`` -> ``w2v_kmeans-k64``."""
    return f"{name}-{tag}" if tag else name

