"""The encoder: a transformers ``HubertModel`` small enough to pretrain on a laptop, and the folder it
is saved as (what ``HubertModel.from_pretrained`` and ``bat-w2v-kmeans --model`` load)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bat_hubert.defaults import (
    CONV_CHANNELS,
    HEADS,
    HIDDEN_SIZE,
    INTERMEDIATE_SIZE,
    LAYERS,
    MASK_LENGTH,
    MASK_PROB,
    MODEL_RATE,
)

# HuBERT-base's front-end: 7 convolutions, receptive field 400 samples, stride 320 (20 ms at 16 kHz).
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)


@dataclass(frozen=True)
class ModelSize:
    hidden_size: int = HIDDEN_SIZE
    layers: int = LAYERS
    heads: int = HEADS
    intermediate_size: int = INTERMEDIATE_SIZE
    conv_channels: int = CONV_CHANNELS


def hubert_config(size: ModelSize):
    """Layer-normalised convolutions (as HuBERT-large) so that a crop's zero padding, masked by the
    attention mask, never reaches its real frames through a group norm."""
    from transformers import HubertConfig

    return HubertConfig(
        hidden_size=size.hidden_size, num_hidden_layers=size.layers, num_attention_heads=size.heads,
        intermediate_size=size.intermediate_size, conv_dim=(size.conv_channels,) * len(CONV_KERNEL),
        conv_kernel=CONV_KERNEL, conv_stride=CONV_STRIDE, feat_extract_norm="layer", do_stable_layer_norm=True,
        conv_bias=True, num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=16,
        mask_time_prob=MASK_PROB, mask_time_length=MASK_LENGTH, hidden_dropout=0.1, attention_dropout=0.1,
        activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
    )


def new_model(size: ModelSize, seed: int):
    from transformers import HubertModel

    torch.manual_seed(seed)
    return HubertModel(hubert_config(size))


def feature_extractor():
    """The extractor bat-w2v-kmeans reads: 16 kHz, per-window zero-mean unit-variance input, attention mask."""
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=MODEL_RATE, padding_value=0.0, do_normalize=True,
                                    return_attention_mask=True)


def save_encoder(model, directory: Path) -> None:
    """config.json + model.safetensors + preprocessor_config.json (float32, eval mode)."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    feature_extractor().save_pretrained(directory)
