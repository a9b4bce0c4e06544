"""bat-core: what every bat-tokenizers strategy shares.

Dataset, paths, device, audio (with time expansion), mel spectrograms, the
representation store and the synthetic demo corpus.
"""

from bat_core.__about__ import __version__
from bat_core.errors import (
    AudioError,
    BatError,
    ConfigMismatchError,
    DatasetError,
    DeviceError,
    ModelNotFoundError,
)

__all__ = [
    "AudioError",
    "BatError",
    "ConfigMismatchError",
    "DatasetError",
    "DeviceError",
    "ModelNotFoundError",
    "__version__",
]
