"""A fitted codebook as a directory: ``config.json`` (what it was made from) + ``centroids.safetensors``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bat_core.errors import ConfigMismatchError, ModelNotFoundError
from bat_w2v_kmeans.__about__ import __version__

CONFIG_FILE = "config.json"
CENTROIDS_FILE = "centroids.safetensors"


@dataclass(frozen=True)
class CodebookInfo:
    """Everything a codebook depends on; encoding with anything else is refused."""

    model_id: str
    model_fingerprint: str
    layer: str  # "last" or the hidden-state index
    time_expansion: str  # "auto" or the factor
    band_hz: tuple[float, float]
    model_sample_rate: int
    samples_per_frame: int
    k: int
    seed: int = 0
    inertia: float = 0.0
    fit_frames: int = 0
    frames_seen: int = 0
    package_version: str = __version__
    extra: dict = field(default_factory=dict)

    def identity(self) -> dict:
        """The fields that must match between a codebook and an encoding run."""
        return {"model_fingerprint": self.model_fingerprint, "layer": self.layer, "time_expansion": self.time_expansion,
                "band_hz": list(self.band_hz), "model_sample_rate": self.model_sample_rate}


@dataclass
class Codebook:
    centroids: np.ndarray  # (k, hidden)
    info: CodebookInfo

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"centroids": torch.from_numpy(np.ascontiguousarray(self.centroids, dtype=np.float32))},
                  str(directory / CENTROIDS_FILE))
        (directory / CONFIG_FILE).write_text(json.dumps({"format": "bat-w2v-kmeans-codebook", **asdict(self.info)}, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Codebook:
        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file() or not (directory / CENTROIDS_FILE).is_file():
            raise ModelNotFoundError(
                f"no codebook in {directory} (expected {CONFIG_FILE} and {CENTROIDS_FILE}); run `bat-w2v-kmeans fit` "
                "first or pass --codebook DIR")
        config = json.loads((directory / CONFIG_FILE).read_text())
        if config.pop("format", None) != "bat-w2v-kmeans-codebook":
            raise ConfigMismatchError(f"{directory} holds no bat-w2v-kmeans codebook")
        config["band_hz"] = tuple(config["band_hz"])
        centroids = load_file(str(directory / CENTROIDS_FILE))["centroids"].numpy()
        return cls(centroids, CodebookInfo(**config))

    def check_matches(self, expected: CodebookInfo) -> None:
        mine, theirs = self.info.identity(), expected.identity()
        differing = {key: (mine[key], theirs[key]) for key in mine if mine[key] != theirs[key]}
        if differing:
            details = "; ".join(f"{key}: codebook {a!r}, this run {b!r}" for key, (a, b) in differing.items())
            raise ConfigMismatchError(
                f"codebook was made with model {self.info.model_id!r} (layer {self.info.layer}) and does not match this "
                f"run ({details}). Encode with the same --model/--layer/--time-expansion, or fit a new codebook")
