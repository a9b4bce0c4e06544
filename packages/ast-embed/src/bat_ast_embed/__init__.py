"""bat-ast-embed: Audio Spectrogram Transformer embeddings of bat recordings."""

from bat_ast_embed.__about__ import __version__
from bat_ast_embed.config import EmbedConfig
from bat_ast_embed.embed import embed_dataset
from bat_ast_embed.embedder import ASTEmbedder, Embedding

__all__ = ["ASTEmbedder", "EmbedConfig", "Embedding", "__version__", "embed_dataset"]
