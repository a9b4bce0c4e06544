"""Loading an AST checkpoint and saying exactly which weights made an output.

A folder that holds another architecture (a wav2vec2 encoder, say) is refused before any
weight is loaded: ``ASTModel.from_pretrained`` would otherwise build a randomly initialised
AST from it and embed with that. A checkpoint missing some of the AST's weights is refused
for the same reason. The weight fingerprint (a hash of every tensor as loaded) goes into the
configuration hash, so outputs made with other weights are stale even under the same name.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from bat_core.errors import ConfigMismatchError, ModelNotFoundError
from bat_core.pretrained import load_pretrained

AST_MODEL_TYPE = "audio-spectrogram-transformer"


def load_checkpoint(name_or_path: str) -> tuple[Any, Any]:
    """(ASTModel, ASTFeatureExtractor) by Hugging Face name or local folder, or a BatError saying why not."""
    from transformers import ASTFeatureExtractor, ASTModel, AutoConfig

    config = load_pretrained(AutoConfig.from_pretrained, name_or_path, "AST model configuration")
    require_ast(config, name_or_path)
    extractor = load_pretrained(ASTFeatureExtractor.from_pretrained, name_or_path, "AST feature extractor")
    model, loading = load_pretrained(_with_loading_info(ASTModel.from_pretrained), name_or_path, "AST model")
    missing = sorted(loading.get("missing_keys") or [])
    if missing:
        raise ModelNotFoundError(
            f"{name_or_path} lacks {len(missing)} of the AST's weights (e.g. {', '.join(missing[:3])}): they would be "
            "random. Pass --model PATH to a complete AST checkpoint (save_pretrained of an ASTModel or "
            "ASTForAudioClassification)")
    return model, extractor


def _with_loading_info(load):
    def loader(name: str, **kwargs):
        return load(name, output_loading_info=True, **kwargs)

    return loader


def require_ast(config: Any, where: str) -> None:
    """ModelNotFoundError unless ``config`` is an Audio Spectrogram Transformer's."""
    found = getattr(config, "model_type", None) or type(config).__name__
    if found != AST_MODEL_TYPE:
        raise ModelNotFoundError(
            f"{where} holds a {found!r} model; bat-ast-embed needs model_type {AST_MODEL_TYPE!r} (an Audio "
            "Spectrogram Transformer such as MIT/ast-finetuned-audioset-10-10-0.4593); pass --model PATH to one")


def require_matching_extractor(model_config: Any, n_mels: int, where: str) -> None:
    """The extractor saved with the model must make the input the model takes."""
    expected = int(model_config.num_mel_bins)
    if n_mels != expected:
        raise ConfigMismatchError(f"{where}: the feature extractor makes {n_mels} mel bins but the model takes {expected}; "
                                  "the folder mixes two checkpoints")


def weights_fingerprint(model: torch.nn.Module) -> str:
    """16 hex digits of sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)};".encode())
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        digest.update(data.numpy().reshape(-1).view(np.uint8))
    return digest.hexdigest()[:16]
