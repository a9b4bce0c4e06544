"""Test helpers that ship with bat-core, so a strategy package tested alone has them.

Fixture data is made on the fly: a small demo corpus, files broken in the ways
field data breaks (empty, corrupt, NaN, stereo, missing), and a locator for the
shared real recordings that skips with a reason when they are absent.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from bat_core.demo import write_demo_corpus

SHARED_BATS_ENV = "BAT_SHARED_BATS"


def make_demo_project(root: str | Path, n_files: int = 6, seed: int = 0) -> Path:
    """A small demo corpus; every call type and at least two sample rates at n_files >= 6."""
    return write_demo_corpus(root, n_files=n_files, seed=seed)


def write_project(root: str | Path, recordings: dict[str, tuple[np.ndarray, int]], subtype: str = "PCM_16") -> Path:
    """A project root holding the given ``{file name: (samples, sample rate)}`` and an annotations.csv listing them."""
    root = Path(root)
    audio_dir = root / "data" / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    for name, (samples, rate) in recordings.items():
        sf.write(audio_dir / name, samples, rate, subtype=subtype)
    with open(root / "data" / "annotations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["File Name"])
        writer.writerows([name] for name in recordings)
    return root


def write_long_recording(path: str | Path, seconds: float, sample_rate: int = 384_000, seed: int = 0) -> Path:
    """A long mono recording (quiet noise with a 40 kHz call every second), written block by block, so
    making a 10-minute file does not itself take the memory a test measures."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    call = (0.3 * np.sin(2 * np.pi * 40_000 * np.arange(int(0.005 * sample_rate)) / sample_rate)).astype(np.float32)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as handle:
        for _ in range(int(seconds)):
            second = (0.003 * rng.standard_normal(sample_rate)).astype(np.float32)
            second[: len(call)] += call
            handle.write(second)
        rest = int((seconds - int(seconds)) * sample_rate)
        if rest:
            handle.write((0.003 * rng.standard_normal(rest)).astype(np.float32))
    return path


def add_bad_files(root: str | Path) -> dict[str, str]:
    """Append broken recordings to a project's annotations.csv.

    Returns ``{file name: text expected in its failure reason}``; a stereo file is
    added too and must succeed (mixed to mono), so it is not in the mapping.
    """
    root = Path(root)
    audio_dir = root / "data" / "audio"
    rate = 250_000
    (audio_dir / "bad_empty.wav").write_bytes(b"")
    (audio_dir / "bad_corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 3)
    nan_audio = np.zeros(rate // 10, dtype=np.float32)
    nan_audio[100:200] = np.nan
    sf.write(audio_dir / "bad_nan.wav", nan_audio, rate, subtype="FLOAT")
    sf.write(audio_dir / "bad_noframes.wav", np.zeros(0, dtype=np.float32), rate, subtype="PCM_16")
    rng = np.random.default_rng(1)
    sf.write(audio_dir / "ok_stereo.wav", (0.01 * rng.standard_normal((rate // 5, 2))).astype(np.float32),
             rate, subtype="PCM_16")
    absurd = np.zeros(rate // 10, dtype=np.float32)
    absurd[500] = 1e30  # finite, yet no recording holds it
    sf.write(audio_dir / "bad_absurd.wav", absurd, rate, subtype="FLOAT")
    expected = {
        "bad_absurd.wav": "beyond",
        "bad_empty.wav": "empty",
        "bad_corrupt.wav": "cannot decode",
        "bad_nan.wav": "NaN",
        "bad_noframes.wav": "no audio samples",
        "bad_missing.wav": "not found",
    }
    csv_path = root / "data" / "annotations.csv"
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or ["File Name"]
        rows = list(reader)
    for name in [*expected, "ok_stereo.wav"]:
        rows.append({column: (name if column == "File Name" else "") for column in columns})
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return expected


def find_shared_bats(start: str | Path | None = None) -> Path | None:
    """The real recordings (``shared/bats``): ``$BAT_SHARED_BATS``, else ``shared/bats``
    beside the checkout (searched upwards from ``start`` or the working directory)."""
    if os.environ.get(SHARED_BATS_ENV):
        candidate = Path(os.environ[SHARED_BATS_ENV])
        return candidate if (candidate / "data" / "annotations.csv").is_file() else None
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "bats"
        if (candidate / "data" / "annotations.csv").is_file():
            return candidate
    return None


def require_shared_bats() -> Path:
    """The real recordings, or a pytest skip that says where they were looked for."""
    import pytest

    found = find_shared_bats()
    if found is None:
        pytest.skip(
            f"real bat recordings not found: set {SHARED_BATS_ENV} or place shared/bats "
            "(data/annotations.csv, data/audio/) beside the checkout"
        )
    return found


def make_tiny_ast(directory: str | Path, max_length: int = 128, num_mel_bins: int = 32, seed: int = 0) -> Path:
    """A tiny random-weight Audio Spectrogram Transformer + its feature extractor, saved with
    ``save_pretrained`` so tests exercise the real ``from_pretrained`` path offline."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(seed)
    config = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       max_length=max_length, num_mel_bins=num_mel_bins, patch_size=16,
                       frequency_stride=10, time_stride=10)
    ASTModel(config).eval().save_pretrained(directory)
    ASTFeatureExtractor(num_mel_bins=num_mel_bins, max_length=max_length).save_pretrained(directory)
    return Path(directory)


def make_tiny_speech_encoder(directory: str | Path, kind: str = "wav2vec2", seed: int = 0,
                             attention_mask: bool = True) -> Path:
    """A tiny random-weight wav2vec2 / HuBERT / WavLM encoder + feature extractor, saved with
    ``save_pretrained`` (conv stride 320 like the base models, 2 layers of width 32).
    ``attention_mask=False`` makes an extractor like wav2vec2-base's / HuBERT-base's, which
    take zero-padded batches without a mask."""
    import torch
    from transformers import (
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WavLMConfig,
        WavLMModel,
    )

    classes = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "hubert": (HubertConfig, HubertModel),
               "wavlm": (WavLMConfig, WavLMModel)}
    config_class, model_class = classes[kind]
    torch.manual_seed(seed)
    config = config_class(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16, 16, 16, 16, 16, 16), conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    model_class(config).eval().save_pretrained(directory)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=attention_mask).save_pretrained(directory)
    return Path(directory)
