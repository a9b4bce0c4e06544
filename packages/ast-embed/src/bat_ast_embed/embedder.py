"""Waveform -> the checkpoint's own filterbank -> AST windows -> pooled vector (and patch sequence).

The filterbank is the checkpoint's own (its extractor's filters and statistics, see
``filterbank``), computed from a raw waveform at the checkpoint's rate (16 kHz for AudioSet
ASTs) after bat-core's time expansion, so the model sees what it was trained on. Lengths:
see ``EmbedConfig`` and ``positions``. ``ASTEmbedder`` gives the runner its three parts
(``prepare``, ``encoder``, ``assembler``); ``embed`` runs the same parts over a clip held in
memory, so a notebook gets the numbers a dataset run writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bat_ast_embed.checkpoint import load_checkpoint, require_ast, require_matching_extractor, weights_fingerprint
from bat_ast_embed.config import EmbedConfig
from bat_ast_embed.encoder import ASTEncoder
from bat_ast_embed.filterbank import HOP_SAMPLES, FilterbankSpec, filterbank
from bat_ast_embed.pieces import ASTPieces, WindowPlan, ast_prepare
from bat_ast_embed.pooling import Embedding, EmbeddingAssembler, WindowOutput, WindowPooling, chosen
from bat_core.audio import check_samples
from bat_core.dataset import DatasetItem
from bat_core.device import compute_dtype, resolve_device
from bat_core.errors import BatError
from bat_core.runner import AudioPrepare, FileInfo, Piece, RunOptions, run
from bat_core.time_expansion import SignalConversion, convert_for_model
from bat_core.values import require_finite

__all__ = ["ASTEmbedder", "Embedding", "Features"]


@dataclass
class Features:
    """Normalised filterbank frames (n_frames, n_mels) of one recording, and what made them."""

    frames: np.ndarray
    conversion: SignalConversion | None
    seconds: float


class ASTEmbedder:
    def __init__(self, model, extractor, config: EmbedConfig, device: torch.device, precision: str = "auto"):
        require_ast(model.config, config.model)
        self.extractor = extractor
        self.filterbank = FilterbankSpec.from_extractor(extractor)
        require_matching_extractor(model.config, self.filterbank.n_mels, config.model)
        self.weights = weights_fingerprint(model)  # as loaded, before the cast to the compute precision
        self.config = config
        self.device = device
        self.dtype = compute_dtype(device, precision)
        self.model = model.eval().to(device=device, dtype=self.dtype)
        model_config = model.config
        self.trained_frames = int(model_config.max_length)
        self.patch_size, self.time_stride = int(model_config.patch_size), int(model_config.time_stride)
        self.layers = int(model_config.num_hidden_layers)
        if not -1 <= config.layer <= self.layers:
            raise ValueError(f"--layer must be -1 (last) or 0..{self.layers} for this model, got {config.layer}")
        self.plan = WindowPlan(self.length_limit, self.patch_size, self.time_stride,
                               bucket=config.bucket_frames if config.max_frames == "auto" else None)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, config: EmbedConfig | None = None,
                        device: str = "auto", precision: str = "auto") -> ASTEmbedder:
        """Load the extractor and model by Hugging Face name or local folder (``save_pretrained``);
        ModelNotFoundError for anything that is not a complete AST checkpoint."""
        config = config or EmbedConfig()
        if name_or_path is not None:
            config = replace(config, model=str(name_or_path))
        model, extractor = load_checkpoint(config.model)
        return cls(model, extractor, config, resolve_device(device), precision)

    @property
    def sample_rate(self) -> int:
        return self.filterbank.sample_rate

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def length_limit(self) -> int:
        """Longest input run in one pass; longer recordings are split into windows of it."""
        if self.config.max_frames in (None, "auto"):
            return self.trained_frames
        return int(self.config.max_frames)

    @property
    def pad_value(self) -> float:
        return self.filterbank.pad_value

    @property
    def precision(self) -> str:
        """The compute dtype in force (``auto`` resolved): ``float32``, ``bfloat16`` or ``float16``."""
        return str(self.dtype).removeprefix("torch.")

    def settings(self) -> dict:
        """Everything that decides an output, for the configuration hash: the settings, the precision, the
        weights' fingerprint and the filterbank. The model's name is not among them (the manifest's
        model_id keeps it): the same weights under another path give the same outputs."""
        values = asdict(self.config)
        values.pop("model")
        return {**values, "precision": self.precision, "weights": self.weights, "input": self.filterbank.describe()}

    def sequence_frames_per_second(self, conversion: SignalConversion | None) -> float:
        """Patch-sequence steps per second of original audio."""
        expansion = conversion.time_expansion if conversion else 1.0
        return self.sample_rate / (HOP_SAMPLES * self.time_stride) * expansion

    # -- the runner's parts ------------------------------------------------
    def pieces(self) -> ASTPieces:
        return ASTPieces(self.filterbank, self.plan)

    def prepare(self) -> AudioPrepare:
        """Worker side (picklable, numpy only): recording -> converted stream -> filterbank -> windows."""
        return ast_prepare(self.pieces(), self.config.time_expansion)

    def encoder(self, batch_size: int = 8, keep_sequence: bool | None = None) -> ASTEncoder:
        """The model over batches of windows; sequences kept when the config saves them (or when asked)."""
        keep = self.config.sequence if keep_sequence is None else keep_sequence
        return ASTEncoder(self.model, self.device, self.dtype, layer=self.config.layer, pad_value=self.pad_value,
                          batch_size=batch_size, keep_sequence=keep)

    def assembler(self, output) -> EmbeddingAssembler:
        return EmbeddingAssembler(output, self.config.pool, self.config.layer, self.config.sequence,
                                  lambda info: self.sequence_frames_per_second(info.conversion))

    # -- in memory -----------------------------------------------------------
    def features(self, samples: np.ndarray, sample_rate: int) -> Features:
        """The model's input for a clip in memory: the whole recording's frames, before windowing."""
        samples = check_samples(samples, "the samples given")
        converted, conversion = convert_for_model(samples, sample_rate, self.sample_rate, self.config.time_expansion)
        return Features(filterbank(converted, self.filterbank), conversion, len(samples) / sample_rate)

    def embed_features(self, batch: Sequence[Features], batch_size: int = 8) -> list[Embedding]:
        """Embed many recordings' features through the runner (in this process): the windows, batches and
        pooling of a dataset run; windows of equal run length share a batch."""
        items = [DatasetItem(f"clip {index}", Path(f"clip {index}")) for index in range(len(batch))]
        by_name = {item.file_name: features for item, features in zip(items, batch)}

        def prepare(item: DatasetItem) -> Iterator[Piece | FileInfo]:
            features = by_name[item.file_name]
            yield from self.plan.pieces(iter([features.frames]))
            yield FileInfo(seconds=features.seconds, conversion=features.conversion)

        collected = _Collected()
        run(items, prepare, collected, self.encoder(batch_size, keep_sequence=True), RunOptions(workers=0, show_progress=False))
        return [collected.embedding(item, self.config.pool) for item in items]

    def embed(self, samples: np.ndarray, sample_rate: int) -> Embedding:
        """One recording (any rate; time expansion per the config) -> its embedding."""
        return self.embed_features([self.features(np.asarray(samples, dtype=np.float32), sample_rate)])[0]


class _Collected:
    """Runner sink keeping each clip's pooled outputs and sequence in memory."""

    def __init__(self):
        self.pooling: dict[str, WindowPooling] = {}
        self.sequences: dict[str, list[np.ndarray]] = {}
        self.failures: dict[str, str] = {}

    def add(self, item: DatasetItem, piece: Piece, output: WindowOutput) -> None:
        self.pooling.setdefault(item.file_name, WindowPooling()).add(piece, output)
        self.sequences.setdefault(item.file_name, []).append(output.sequence)

    def done(self, item: DatasetItem, info: FileInfo) -> None:
        pass

    def fail(self, item: DatasetItem, reason: str) -> None:
        self.failures[item.file_name] = reason

    def embedding(self, item: DatasetItem, pool: str) -> Embedding:
        if item.file_name in self.failures:
            raise BatError(f"cannot embed {item.file_name}: {self.failures[item.file_name]}")
        pooling = self.pooling[item.file_name]
        pooler, mean = pooling.result()
        pooled = require_finite(chosen(pool, pooler, mean), f"the embedding of {item.file_name}")
        return Embedding(pooled, mean, pooler, np.concatenate(self.sequences[item.file_name]), len(pooling.run_frames),
                         pooling.run_frames)
