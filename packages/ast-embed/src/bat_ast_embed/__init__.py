"""bat-ast-embed: Audio Spectrogram Transformer embeddings of bat recordings.

Exports are loaded on first use: the runner's worker processes import this package to
unpickle the prepare step, and must not import torch or transformers' model code.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from bat_ast_embed.__about__ import __version__

if TYPE_CHECKING:
    from bat_ast_embed.config import EmbedConfig
    from bat_ast_embed.embed import embed_dataset
    from bat_ast_embed.embedder import ASTEmbedder, Features
    from bat_ast_embed.pooling import Embedding

_EXPORTS = {
    "ASTEmbedder": "bat_ast_embed.embedder",
    "EmbedConfig": "bat_ast_embed.config",
    "Embedding": "bat_ast_embed.pooling",
    "Features": "bat_ast_embed.embedder",
    "embed_dataset": "bat_ast_embed.embed",
}

__all__ = ["ASTEmbedder", "EmbedConfig", "Embedding", "Features", "__version__", "embed_dataset"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bat_ast_embed' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
