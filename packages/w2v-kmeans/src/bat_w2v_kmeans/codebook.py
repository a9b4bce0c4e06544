"""A fitted codebook as a directory: ``config.json`` (what it was made from, which files fed it, which
failed) + ``centroids.safetensors``. Saved atomically; an existing codebook is replaced only on request."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from bat_core.errors import BatError, ConfigMismatchError, ModelNotFoundError
from bat_w2v_kmeans.__about__ import __version__

CONFIG_FILE = "config.json"
CENTROIDS_FILE = "centroids.safetensors"
FORMAT = "bat-w2v-kmeans-codebook"
FINGERPRINT_METHOD = "sha256 of every weight tensor"  # round 1 hashed 4 tensors: its codebooks do not match


class CodebookExistsError(BatError):
    """A codebook is already where a new one would go."""


@dataclass(frozen=True)
class CodebookInfo:
    """Everything a codebook depends on (encoding with anything else is refused) and how it was fitted."""

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
    max_fit_frames: int = 0
    window_samples: int = 0
    hop_samples: int = 0
    bucket_samples: int = 0
    precision: str = ""
    data_fingerprint: str = ""  # the recordings it was fitted on (names, sizes, times)
    files_given: int = 0
    files_done: int = 0
    failed_files: list = field(default_factory=list)  # [file name, reason] of each file that could not be used
    fingerprint_method: str = FINGERPRINT_METHOD
    package_version: str = __version__
    extra: dict = field(default_factory=dict)

    @property
    def files_failed(self) -> int:
        return len(self.failed_files)

    def identity(self) -> dict:
        """The fields that must match between a codebook and an encoding run."""
        return {"model_fingerprint": self.model_fingerprint, "layer": self.layer, "time_expansion": self.time_expansion,
                "band_hz": list(self.band_hz), "model_sample_rate": self.model_sample_rate}

    def fit_settings(self) -> dict:
        """Everything that decides which codebook a fit makes: same settings, same data, same codebook."""
        return {**self.identity(), "k": self.k, "seed": self.seed, "max_fit_frames": self.max_fit_frames,
                "window_samples": self.window_samples, "hop_samples": self.hop_samples,
                "bucket_samples": self.bucket_samples, "precision": self.precision,
                "data_fingerprint": self.data_fingerprint}


@dataclass
class Codebook:
    centroids: np.ndarray  # (k, hidden) float32
    info: CodebookInfo

    def fingerprint(self) -> str:
        """Hash of the centroids: outputs made with a codebook carry it, and become stale when it changes."""
        return hashlib.sha256(np.ascontiguousarray(self.centroids, dtype=np.float32).tobytes()).hexdigest()[:16]

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write ``config.json`` + ``centroids.safetensors`` into a new folder, then move it into place."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        if exists(directory) and not overwrite:
            raise CodebookExistsError(f"a codebook already exists in {directory}; pass --overwrite to replace it "
                                      "(or --codebook DIR / --tag NAME to keep both)")
        directory.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(directory)
        temporary = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        save_file({"centroids": np.ascontiguousarray(self.centroids, dtype=np.float32)}, str(temporary / CENTROIDS_FILE))
        (temporary / CONFIG_FILE).write_text(json.dumps({"format": FORMAT, **asdict(self.info)}, indent=2))
        if directory.exists():
            old = directory.with_name(f".{directory.name}.{os.getpid()}.old")
            os.replace(directory, old)
            os.replace(temporary, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Codebook:
        from safetensors.numpy import load_file

        directory = Path(directory)
        if not exists(directory):
            raise ModelNotFoundError(
                f"no codebook in {directory} (expected {CONFIG_FILE} and {CENTROIDS_FILE}); run `bat-w2v-kmeans fit` "
                "first or pass --codebook DIR")
        config = json.loads((directory / CONFIG_FILE).read_text())
        if config.pop("format", None) != FORMAT:
            raise ConfigMismatchError(f"{directory} holds no bat-w2v-kmeans codebook")
        known = {f.name for f in fields(CodebookInfo)}
        config = {key: value for key, value in config.items() if key in known}
        config.setdefault("fingerprint_method", "round 1: 4 tensors")
        config["band_hz"] = tuple(config["band_hz"])
        centroids = load_file(str(directory / CENTROIDS_FILE))["centroids"]
        return cls(np.asarray(centroids, dtype=np.float32), CodebookInfo(**config))

    def check_matches(self, expected: CodebookInfo) -> None:
        mine, theirs = self.info.identity(), expected.identity()
        differing = {key: (mine[key], theirs[key]) for key in mine if mine[key] != theirs[key]}
        if differing:
            details = "; ".join(f"{key}: codebook {a!r}, this run {b!r}" for key, (a, b) in differing.items())
            hint = ("" if self.info.fingerprint_method == FINGERPRINT_METHOD else
                    " (this codebook was made by bat-w2v-kmeans 0.1, whose model fingerprints covered 4 tensors only: "
                    "fit it again)")
            raise ConfigMismatchError(
                f"codebook was made with model {self.info.model_id!r} (layer {self.info.layer}) and does not match this "
                f"run ({details}){hint}. Encode with the same --model/--layer/--time-expansion, or fit a new codebook")


def _remove_leftovers(directory: Path) -> None:
    """Folders a save killed half-way left beside ``directory`` (their writer's pid is in the name)."""
    from bat_core.locks import pid_alive

    for leftover in directory.parent.glob(f".{directory.name}.*"):
        pid = leftover.name.removeprefix(f".{directory.name}.").split(".")[0]
        if pid.isdigit() and leftover.suffix in (".tmp", ".old") and not pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def exists(directory: str | Path) -> bool:
    directory = Path(directory)
    return (directory / CONFIG_FILE).is_file() or (directory / CENTROIDS_FILE).is_file()
