"""The encoder: a transformers ``HubertModel`` small enough to pretrain on a laptop, and the folder it
is saved as (what ``HubertModel.from_pretrained`` and ``bat-w2v-kmeans --model`` load)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from bat_core.errors import BatError, ConfigMismatchError
from bat_hubert.defaults import (
    CONV_CHANNELS,
    HEADS,
    HIDDEN_SIZE,
    INTERMEDIATE_SIZE,
    LAYERS,
    MASK_LENGTH,
    MASK_PROB,
    MODEL_RATE,
    TRAINING_JSON,
)

# HuBERT-base's front-end: 7 convolutions, receptive field 400 samples, stride 320 (20 ms at 16 kHz).
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)
# What must agree for another folder's weights to be this run's starting point (the sizes, and what shapes them).
ARCHITECTURE = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "conv_dim", "conv_kernel", "conv_stride", "conv_bias", "feat_extract_norm", "do_stable_layer_norm",
                "num_conv_pos_embeddings", "num_conv_pos_embedding_groups")


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


@dataclass(frozen=True)
class InitWeights:
    """The weights an ``--init`` run starts from, and what identifies them in its record."""

    tensors: dict[str, torch.Tensor]
    record: dict


def read_init(directory: Path, size: ModelSize) -> InitWeights:
    """A saved encoder folder's weights, refused (exit 2) unless its architecture is the one ``size`` makes:
    continuing from a checkpoint must not silently become training from scratch or a partial load."""
    from safetensors.torch import load_file
    from transformers import HubertConfig

    weights = directory / "model.safetensors"
    if not (directory / "config.json").is_file() or not weights.is_file():
        raise BatError(f"--init {directory}: no config.json and model.safetensors there (give a folder that "
                       "bat-hubert pretrain saved)")
    saved, wanted = HubertConfig.from_pretrained(directory).to_dict(), hubert_config(size).to_dict()
    differ = [f"{name} {_plain(saved.get(name))} (this run: {_plain(wanted.get(name))})" for name in ARCHITECTURE
              if _plain(saved.get(name)) != _plain(wanted.get(name))]
    if differ:
        raise ConfigMismatchError(f"--init {directory} holds another architecture: {'; '.join(differ)}. Pass the "
                                  "sizes it was trained with (--hidden-size, --layers, --heads, --intermediate-size, "
                                  "--conv-channels)")
    tensors = load_file(weights)
    training_path = directory / TRAINING_JSON
    trained = json.loads(training_path.read_text(encoding="utf-8")) if training_path.is_file() else {}
    record = {"directory": str(directory.resolve()),
              "model_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
              "trained_by": trained.get("trained_by"), "corpus_fingerprint": trained.get("corpus_fingerprint"),
              "time_expansion": trained.get("time_expansion"), "iterations": trained.get("iterations")}
    return InitWeights(tensors, record)


def load_init(model, init: InitWeights) -> None:
    """Put the init weights into ``model``, every tensor by name and shape (a file that disagrees with its own
    config.json is refused, not half loaded)."""
    own = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    given = {name: tuple(value.shape) for name, value in init.tensors.items()}
    if own != given:
        odd = sorted(set(own) ^ set(given)) or sorted(name for name in own if own[name] != given[name])
        raise ConfigMismatchError(f"--init {init.record['directory']}: model.safetensors does not match its "
                                  f"config.json ({len(odd)} tensors differ, e.g. {odd[0]})")
    model.load_state_dict(init.tensors)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
