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


class NonFiniteError(AudioError):
    """A computed output holds NaN or infinity: the file fails, nothing is written as ok."""


class ConfigMismatchError(BatError):
    """An artefact (codebook, model, stats) was made with a different configuration."""


class ModelNotFoundError(BatError):
    """A pretrained model could not be loaded by name or path."""


class MissingExtraError(BatError):
    """An optional dependency is not installed; the message names the pip extra that brings it."""


class DeviceError(BatError):
    """The requested compute device is not available on this machine."""


class RunStopped(BatError):
    """The run cannot go on (outputs cannot be written, another writer holds the lock): exit 2.

    Never turned into a failed row: it is not about one file."""


class OutputError(RunStopped):
    """Outputs cannot be written: read-only folder, no permission, full disk."""


class LockedError(RunStopped):
    """Another process is writing the same representation into the same folder."""
