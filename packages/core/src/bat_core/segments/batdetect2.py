"""batdetect2 as a second call detector: the same box table, from a trained U-Net.

batdetect2 (Mac Aodha et al.) resamples every file to 256 kHz, computes a PCEN spectrogram of
10-120 kHz and runs a small U-Net that returns boxes (start/end time, low/high frequency) with a
detection probability. It is optional (``pip install 'bat-core[batdetect2]'`` then
``pip install --no-deps batdetect2==1.3.1``: its metadata asks for torchaudio and torchvision,
whose builds pin another torch than ours, while ``batdetect2.api`` needs neither), so it is imported
only inside the worker that runs it, once per process.

Memory: batdetect2's ``process_file`` decodes the whole file and a 256 kHz copy (float32) before
cutting it into 3 s chunks for the network: about 4 bytes x (rate + 256 000) per second of audio,
~11 GB for an hour at 500 kHz, 1.8 GB for the default bound. Files longer than ``max_seconds`` (600 s) are
failed rows saying so, never an out-of-memory kill of the run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bat_core.dataset import DatasetItem
from bat_core.errors import AudioError, MissingExtraError
from bat_core.runner import FileInfo, Piece

NAME = "batdetect2"
VERSION = 1  # of this wrapper's output; the package and model versions are in the config too
REQUIREMENT = "batdetect2==1.3.1"
MODEL_FILE = "Net2DFast_UK_same.pth.tar"
TARGET_RATE_HZ = 256_000
BAND_HZ = (10_000.0, 120_000.0)
COLUMNS = ("start_time_s", "end_time_s", "low_freq_hz", "high_freq_hz", "score")  # no peak_freq_hz: NaN in the table
LICENCE_LINE = "batdetect2 model weights: CC BY-NC 4.0 (non-commercial) — https://github.com/macaodha/batdetect2"
INSTALL_HINT = ("install it in two steps, the second keeping your torch: "
                f"pip install 'bat-core[batdetect2]' && pip install --no-deps {REQUIREMENT}")
# Defaults, written here so that --help needs nothing heavier than this module.
DEFAULT_THRESHOLD = 0.3  # batdetect2's README example and the threshold of shared/bats/calls.csv (API default: 0.01)
DEFAULT_CHUNK_SECONDS = 3.0  # batdetect2.api's chunk_size
DEFAULT_MIN_SECONDS = 0.01
DEFAULT_MAX_SECONDS = 600.0


@dataclass(frozen=True)
class Batdetect2Params:
    """What changes batdetect2's boxes (hashed into the configuration name)."""

    detection_threshold: float = DEFAULT_THRESHOLD  # det_prob below this is dropped
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS  # batdetect2 runs its network on chunks this long
    min_seconds: float = DEFAULT_MIN_SECONDS  # shorter files are failed rows (batdetect2 issues: crashes on them)
    max_seconds: float = DEFAULT_MAX_SECONDS  # longer files are failed rows (whole-file decoding, see module doc)

    def __post_init__(self) -> None:
        if not 0.0 <= self.detection_threshold <= 1.0:
            raise ValueError(f"detection_threshold is a probability in [0, 1], got {self.detection_threshold}")
        if self.chunk_seconds <= 0 or self.min_seconds < 0 or self.max_seconds <= self.min_seconds:
            raise ValueError(f"need chunk_seconds > 0 and 0 <= min_seconds < max_seconds, got {self}")


def require_batdetect2() -> None:
    """MissingExtraError with the two-step install when batdetect2 or torch cannot be imported.

    Checked in the main process before any worker starts (without importing either: the check is
    instant), so a missing extra is one line and exit 2, not one failed row per file."""
    missing = [name for name in ("torch", "batdetect2") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"{' and '.join(missing)} not importable. {INSTALL_HINT}")


_API: Any = None  # batdetect2.api, once per process: importing it loads the model


def batdetect2_api() -> Any:
    """``batdetect2.api`` (model loaded at import), cached per worker process."""
    global _API
    if _API is None:
        try:
            import batdetect2.api as api
        except ImportError as error:
            raise MissingExtraError(f"cannot import batdetect2.api ({error}). {INSTALL_HINT}") from error
        _API = api
    return _API


@dataclass(frozen=True)
class Batdetect2Prepare:
    """Recording -> one call array from batdetect2 (its own loader and chunking), in a worker."""

    params: Batdetect2Params
    piece_bytes: int = 1 << 16

    def __call__(self, item: DatasetItem) -> Iterator[Piece | FileInfo]:
        from bat_core.audio import audio_info, read_blocks

        info = audio_info(item.path)
        seconds = info.seconds
        if info.frames == 0:
            raise AudioError(f"empty: no audio samples in {item.path} (batdetect2 issues report crashes on empty files)")
        if seconds < self.params.min_seconds:
            raise AudioError(f"too short for batdetect2: {1000 * seconds:.2f} ms < {1000 * self.params.min_seconds:g} ms "
                             f"(shorter than one call; batdetect2 issues report crashes on such files)")
        if seconds > self.params.max_seconds:
            raise AudioError(f"too long for batdetect2: {seconds:.0f} s > {self.params.max_seconds:g} s; it decodes the whole "
                             f"file and a 256 kHz copy in memory (~{4 * (info.sample_rate + TARGET_RATE_HZ) * seconds / 1e9:.1f} GB "
                             f"here): split the file, or raise max_seconds")
        for _ in read_blocks(item.path):  # bat-core's checks (corrupt, NaN, absurd values: the band-energy detector's
            pass                          # reasons), streamed, before batdetect2 decodes the file whole
        calls = detect_file(str(item.path), self.params)
        yield Piece(calls, length=len(calls))
        yield FileInfo(seconds=seconds, extra={"channels": info.channels, "sample_rate": info.sample_rate,
                                               "resampled_to_hz": TARGET_RATE_HZ, "band_hz": list(BAND_HZ)})


def detect_file(path: str, params: Batdetect2Params = Batdetect2Params()) -> np.ndarray:
    """batdetect2's boxes of one file as ``(n, 5)`` rows of ``COLUMNS`` (score: its det_prob; it gives no peak
    frequency, which the table fills with NaN), seconds of the file. Any batdetect2 failure is an AudioError."""
    api = batdetect2_api()
    config = api.get_config(detection_threshold=params.detection_threshold, chunk_size=params.chunk_seconds, quiet=True)
    try:
        results = api.process_file(path, config=config)
    except MemoryError:
        raise
    except Exception as error:  # batdetect2's own bugs on odd files: this file fails, the run goes on
        raise AudioError(f"batdetect2 failed on {path}: {type(error).__name__}: {error}") from error
    annotations = results["pred_dict"]["annotation"]
    calls = np.array([[a["start_time"], a["end_time"], a["low_freq"], a["high_freq"], a["det_prob"]]
                      for a in annotations], dtype=np.float64).reshape(-1, len(COLUMNS))
    return calls[np.argsort(calls[:, 0], kind="stable")] if len(calls) else calls


@dataclass(frozen=True)
class Batdetect2Detector:
    """The ``bat-core segment --detector batdetect2`` detector: name, version, config, per-file prepare."""

    params: Batdetect2Params = Batdetect2Params()
    name: str = NAME
    version: int = VERSION
    columns: tuple[str, ...] = COLUMNS

    def config(self) -> dict:
        return {"detector": self.name, "version": self.version, "params": asdict(self.params),
                "package": REQUIREMENT, "model": MODEL_FILE, "columns": list(self.columns)}

    def prepare(self) -> Batdetect2Prepare:
        return Batdetect2Prepare(self.params)

    def begin_run(self) -> None:
        """Fail fast without the extra; say the weights' licence once per run."""
        require_batdetect2()
        print(LICENCE_LINE)
