"""bat-w2v-kmeans: speech-encoder frames of time-expanded bat recordings -> k-means tokens.

Exports load on first use: worker processes unpickle this package's numpy-only piece makers
(``bat_w2v_kmeans.pieces``) and must not import torch or transformers with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bat_w2v_kmeans.__about__ import __version__

_EXPORTS = {
    "Codebook": "bat_w2v_kmeans.codebook",
    "CodebookExistsError": "bat_w2v_kmeans.codebook",
    "CodebookInfo": "bat_w2v_kmeans.codebook",
    "NotEnoughFramesError": "bat_w2v_kmeans.tokenizer",
    "PipelineResult": "bat_w2v_kmeans.api",
    "SpeechEncoder": "bat_w2v_kmeans.encoder",
    "W2VKMeansTokenizer": "bat_w2v_kmeans.tokenizer",
    "encode_dataset": "bat_w2v_kmeans.encode",
    "fit_codebook": "bat_w2v_kmeans.api",
    "run_lengths": "bat_w2v_kmeans.assemble",
    "run_pipeline": "bat_w2v_kmeans.api",
}

__all__ = [
    "Codebook",
    "CodebookExistsError",
    "CodebookInfo",
    "NotEnoughFramesError",
    "PipelineResult",
    "SpeechEncoder",
    "W2VKMeansTokenizer",
    "__version__",
    "encode_dataset",
    "fit_codebook",
    "run_lengths",
    "run_pipeline",
]

if TYPE_CHECKING:
    from bat_w2v_kmeans.api import PipelineResult, fit_codebook, run_pipeline
    from bat_w2v_kmeans.assemble import run_lengths
    from bat_w2v_kmeans.codebook import Codebook, CodebookExistsError, CodebookInfo
    from bat_w2v_kmeans.encode import encode_dataset
    from bat_w2v_kmeans.encoder import SpeechEncoder
    from bat_w2v_kmeans.tokenizer import NotEnoughFramesError, W2VKMeansTokenizer


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bat_w2v_kmeans' has no attribute {name!r}")
