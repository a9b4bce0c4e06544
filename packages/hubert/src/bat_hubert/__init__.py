"""bat-hubert: a HuBERT-style encoder pretrained on the user's own bat recordings.

Exports load on first use: worker processes unpickle this package's numpy-only piece maker
(``bat_hubert.crops``) and must not import torch or transformers with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bat_hubert.__about__ import __version__

_EXPORTS = {
    "ModelSize": "bat_hubert.model",
    "PretrainResult": "bat_hubert.pretrain",
    "PretrainSettings": "bat_hubert.pretrain",
    "pretrain": "bat_hubert.pretrain",
}

__all__ = ["ModelSize", "PretrainResult", "PretrainSettings", "__version__", "pretrain"]

if TYPE_CHECKING:
    from bat_hubert.model import ModelSize
    from bat_hubert.pretrain import PretrainResult, PretrainSettings, pretrain


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bat_hubert' has no attribute {name!r}")
