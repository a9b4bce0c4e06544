"""One exception family for bat-tokenizers.

Every message says what was wrong, where, and what to do, so a CLI can print it as is.
"""

from __future__ import annotations


class BatError(Exception):
    """Base of every error raised on purpose by bat-tokenizers."""


class DatasetError(BatError):
    """The project root or its annotations.csv cannot be used; nothing was processed."""


class AudioError(BatError):
    """One recording cannot be used (missing, empty, corrupt, NaN). Becomes a failed row."""


class ConfigMismatchError(BatError):
    """An artefact (codebook, model, stats) was made with a different configuration."""


class ModelNotFoundError(BatError):
    """A pretrained model could not be loaded by name or path."""


class DeviceError(BatError):
    """The requested compute device is not available on this machine."""
