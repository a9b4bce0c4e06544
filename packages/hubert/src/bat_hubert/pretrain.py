"""``pretrain``: the HuBERT recipe on a project's own recordings, as a library function.

Crops of the corpus (bat-core's runner, as bat-w2v-kmeans reads it) -> iteration 0: the convolutions
regress each frame's log-mel (``frontend``) -> iteration 1: masked prediction of k-means units of log-mel
frames -> iteration 2..: units of a middle layer of the model so far -> the model saved as a transformers
folder, with a JSON of how it was trained.

Unlike fairseq, which trains every iteration from scratch, iteration 2 continues from iteration 1's
weights with a new head: half the compute for the same budget, which is what lets the default finish
in minutes on a laptop CPU.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from bat_core.calls import CallSelection
from bat_core.dataset import Dataset, DatasetItem, corpus_fingerprint
from bat_core.errors import BatError, ConfigMismatchError
from bat_core.runner import RunOptions
from bat_core.time_expansion import TimeExpansion
from bat_hubert.__about__ import __version__
from bat_hubert.checkpoint import CHECKPOINT, read_checkpoint, restore_stage, save_checkpoint
from bat_hubert.corpus import Crops, collect_crops
from bat_hubert.defaults import (
    BATCH_SIZE,
    CLUSTERS,
    CROP_SECONDS,
    EPOCHS,
    FRONTEND_LEARNING_RATE,
    FRONTEND_STEPS,
    HELD_BACK_FRACTION,
    ITERATIONS,
    LEARNING_RATE,
    MASK_LENGTH,
    MASK_PROB,
    MAX_CROPS,
    MAX_FIT_FRAMES,
    MELS,
    MIN_STEPS,
    MODEL_RATE,
    SAMPLES_PER_FRAME,
    TIME_EXPANSION,
    TRAINING_JSON,
)
from bat_hubert.frontend import FrontendResult, frontend_record, train_frontend
from bat_hubert.model import InitWeights, ModelSize, load_init, new_model, read_init, save_encoder
from bat_hubert.targets import cluster_targets, log_mel_frames, mel_filters, pnmi
from bat_hubert.train import EpochResult, Stage, TrainSettings, new_stage, run_epochs, steps

log = logging.getLogger(__name__)

LOG_CSV = "pretrain_log.csv"
LOG_COLUMNS = ("iteration", "epoch", "clusters", "train_loss", "held_loss", "held_masked_accuracy",
               "chance_accuracy", "held_masked_frames", "targets_pnmi", "label_column", "seconds")
DEFAULT_LABEL_COLUMN = "call_type"
OUTPUTS = ("config.json", "model.safetensors", "preprocessor_config.json", TRAINING_JSON, LOG_CSV, CHECKPOINT)


@dataclass(frozen=True)
class PretrainSettings:
    """What determines the model (with the corpus and the time expansion)."""

    iterations: int = ITERATIONS
    epochs: int = EPOCHS
    min_steps: int = MIN_STEPS  # per iteration: ``epochs`` is raised to reach it (0: never)
    size: ModelSize = field(default_factory=ModelSize)
    clusters: tuple[int, ...] = CLUSTERS
    crop_seconds: float = CROP_SECONDS
    max_crops: int = MAX_CROPS
    held_back_fraction: float = HELD_BACK_FRACTION
    max_fit_frames: int = MAX_FIT_FRAMES
    batch_size: int = BATCH_SIZE
    learning_rate: float = LEARNING_RATE
    mask_prob: float = MASK_PROB
    mask_length: int = MASK_LENGTH
    mels: int = MELS
    frontend_steps: int = FRONTEND_STEPS  # iteration 0's steps (0: none; skipped with ``init``)
    frontend_learning_rate: float = FRONTEND_LEARNING_RATE
    layer: int | None = None  # the layer whose features later iterations cluster (None: the middle one)
    seed: int = 0

    def clusters_for(self, iteration: int) -> int:
        return self.clusters[min(iteration, len(self.clusters)) - 1]

    @property
    def target_layer(self) -> int:
        return self.layer if self.layer is not None else max(1, self.size.layers // 2)

    def epochs_for(self, train_crops: int) -> int:
        """``epochs``, or more where ``train_crops`` give too few steps for ``min_steps`` per iteration."""
        per_epoch = max(1, steps(train_crops, self.batch_size))
        return max(self.epochs, -(-self.min_steps // per_epoch))

    def train(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                             mask_prob=self.mask_prob, mask_length=self.mask_length, seed=self.seed)


@dataclass
class PretrainResult:
    directory: Path
    rows: list[EpochResult]
    crops: int
    failures: dict[str, str]
    training: dict
    frontend: FrontendResult | None = None


def pretrain(dataset: Dataset, directory: str | Path, settings: PretrainSettings = PretrainSettings(),
             expansion: TimeExpansion = TimeExpansion.parse(TIME_EXPANSION), device: str | torch.device = "cpu", *,
             overwrite: bool = False, resume: bool = False, label_column: str | None = None,
             options: RunOptions = RunOptions(), after_epoch: Callable[[EpochResult], None] | None = None,
             calls: CallSelection | None = None, init: str | Path | None = None) -> PretrainResult:
    """Pretrain on ``dataset`` (on its ``calls`` only, when given) and save the encoder in ``directory``;
    ``resume`` continues from the checkpoint a stopped run left there (same settings and recordings only);
    ``init`` starts from the weights of a folder saved before (same architecture only) instead of random ones."""
    directory = Path(directory)
    if settings.target_layer > settings.size.layers:
        raise BatError(f"--target-layer must be 1..{settings.size.layers}, got {settings.target_layer}")
    start: InitWeights | None = None
    if init is not None:
        if Path(init).resolve() == directory.resolve():  # --overwrite would delete the weights being continued
            raise BatError(f"--init and --model are both {directory}: save the continued encoder in another --model DIR")
        start = read_init(Path(init), settings.size)  # read before anything in --model is replaced
    items = list(dataset)
    checkpoint = directory / CHECKPOINT
    if resume and not checkpoint.is_file():
        raise BatError(f"--resume: no checkpoint in {directory} (a pretrain stopped before it ended leaves "
                       f"{CHECKPOINT}); run without --resume")
    ours = [directory / name for name in OUTPUTS]
    if not resume and any(path.exists() for path in ours):
        if not overwrite:
            raise BatError(f"{directory} already holds a model or a checkpoint; pass --overwrite to replace it, "
                           "--resume to continue a stopped run, or --model DIR to keep both")
        for path in ours:  # only what pretrain writes: --model may name a folder holding other things
            path.unlink(missing_ok=True)
    device = torch.device(device)
    fingerprint = corpus_fingerprint(items)
    if calls is not None:  # the same recordings seen through another table are other training data
        fingerprint = f"{fingerprint}+calls:{calls.fingerprint[:16]}:{calls.context_s:g}"

    crops = collect_crops(items, expansion, settings.crop_seconds, settings.max_crops, settings.seed, options, calls)
    if len(crops) < 2:
        raise BatError(f"only {len(crops)} crop(s) of audio could be made from {len(items)} recording(s) "
                       f"({len(crops.failures)} failed): pretraining needs more")
    held_count = max(1, int(round(settings.held_back_fraction * len(crops))))
    train, held = crops.subset(np.arange(len(crops) - held_count)), crops.subset(np.arange(len(crops) - held_count, len(crops)))
    labels, column = _frame_labels(items, crops, dataset.label_columns, label_column)
    epochs = settings.epochs_for(len(train))
    if epochs > settings.epochs:
        log.warning("%d training crops make %d steps per epoch: %d epochs per iteration instead of %d, for the %d "
                    "steps an iteration needs to learn anything (--min-steps)", len(train),
                    steps(len(train), settings.batch_size), epochs, settings.epochs, settings.min_steps)
    key = settings_key(settings, expansion, fingerprint, start.record["model_sha256"] if start else None, epochs)

    resumed_at = (0, 0)
    tensors: dict[str, torch.Tensor] = {}
    metadata: dict = {}
    if resume:
        metadata, tensors = read_checkpoint(checkpoint)
        if metadata.get("settings") != key:
            raise ConfigMismatchError(f"the checkpoint in {directory} was made with other settings or recordings; "
                                      "run with the same options, or --overwrite to start again")
        resumed_at = (int(metadata["iteration"]), int(metadata["epochs_done"]))
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / LOG_CSV
    if not resume:
        with open(log_path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(LOG_COLUMNS)

    model = new_model(settings.size, settings.seed)
    if start is not None:
        load_init(model, start)
    model = model.to(device)
    frontend = None
    if settings.frontend_steps and start is None and resumed_at == (0, 0):  # a checkpoint holds its result
        log.info("iteration 0: the convolutions learn to regress each frame's log-mel (%d steps)", settings.frontend_steps)
        frontend = train_frontend(model, train, held, settings.frontend_steps, settings.batch_size,
                                  settings.frontend_learning_rate, settings.mels, settings.seed, device)
        log.info("iteration 0 done: held-back error %.3f of each band's variance (1.0: the band's mean), %.0f s",
                 frontend.held_loss, frontend.seconds)
        with open(log_path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow([0, 1, "", f"{frontend.train_loss:.4f}", f"{frontend.held_loss:.4f}", "", "",
                                         frontend.held_frames, "", "", f"{frontend.seconds:.1f}"])
    rows: list[EpochResult] = []
    train_settings = replace(settings.train(), epochs=epochs)
    for iteration in range(1, settings.iterations + 1):
        if iteration < resumed_at[0]:
            continue
        k = settings.clusters_for(iteration)
        if iteration == resumed_at[0]:
            stage = new_stage(model, k, np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64), train_settings, iteration)
            restore_stage(stage, tensors, metadata)
            first_epoch = resumed_at[1]
        else:
            features = _mel_features(settings.mels) if iteration == 1 else _layer_features(model, settings.target_layer, device)
            targets, _ = cluster_targets(crops, features, k, settings.seed + iteration, settings.max_fit_frames,
                                         device=device)
            stage = new_stage(model, k, targets[: len(train)], targets[len(train):], train_settings, iteration)
            first_epoch = 0
        iteration_pnmi = _pnmi(stage, labels)

        def finished(result: EpochResult, iteration=iteration, stage=stage, k=k, iteration_pnmi=iteration_pnmi) -> None:
            save_checkpoint(checkpoint, stage, iteration, result.epoch + 1, key)
            with open(log_path, "a", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow([iteration, result.epoch + 1, k, f"{result.train_loss:.4f}",
                                             f"{result.held_loss:.4f}", f"{result.held_accuracy:.4f}",
                                             f"{result.chance_accuracy:.4f}", result.masked_frames,
                                             "" if iteration_pnmi is None else f"{iteration_pnmi:.4f}", column or "",
                                             f"{result.seconds:.1f}"])
            rows.append(result)
            if after_epoch is not None:
                after_epoch(result)

        run_epochs(stage, train, held, train_settings, iteration, first_epoch, device, finished)

    model = model.to("cpu").float().eval()
    save_encoder(model, directory)
    training = training_record(settings, expansion, fingerprint, crops, items, rows, column, epochs)
    training["init"] = start.record if start else None
    training["frontend"] = frontend_record(settings.frontend_steps, frontend,
                                           _logged_frontend_error(log_path) if resume else None)
    (directory / TRAINING_JSON).write_text(json.dumps(training, indent=2) + "\n", encoding="utf-8")
    checkpoint.unlink(missing_ok=True)
    return PretrainResult(directory, rows, len(crops), crops.failures, training, frontend)


def settings_key(settings: PretrainSettings, expansion: TimeExpansion, fingerprint: str,
                 init_sha256: str | None = None, epochs: int | None = None) -> str:
    """What the model depends on: the epochs run, not the floor that chose them."""
    chosen = {name: value for name, value in asdict(settings).items() if name != "min_steps"}
    fields = {"settings": chosen, "expansion": asdict(expansion), "corpus": fingerprint, "version": __version__,
              "low_passed_above_hz": expansion.band_high_hz}  # a checkpoint from before bat-core's cut is not resumed
    if init_sha256:  # absent without --init, so checkpoints of earlier runs keep their key
        fields["init"] = init_sha256
    if epochs is not None and epochs != settings.epochs:  # likewise absent where the floor changed nothing
        fields["epochs_run"] = epochs
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def training_record(settings: PretrainSettings, expansion: TimeExpansion, fingerprint: str, crops: Crops,
                    items: Sequence[DatasetItem], rows: list[EpochResult], column: str | None, epochs: int) -> dict:
    """How the model was trained: what bat-w2v-kmeans must reproduce to feed it the same audio."""
    last = {row.iteration: row for row in rows}
    return {
        "trained_by": f"bat-hubert {__version__}",
        "time_expansion": expansion.describe(),
        "time_expansion_by_sample_rate": {str(rate): factor for rate, factor in crops.factors.items()},
        "band_hz": [expansion.band_low_hz, expansion.band_high_hz],
        "low_passed_above_hz": expansion.band_high_hz,  # bat-core cuts above the band's top; w2v-kmeans checks it
        "model_sample_rate": MODEL_RATE,
        "samples_per_frame": SAMPLES_PER_FRAME,
        "target_rate_hz": MODEL_RATE / SAMPLES_PER_FRAME,
        "target_rate_note": "frames per second of model audio; per original second multiply by the time expansion",
        "input_normalisation": "zero mean, unit variance per crop",
        "corpus_fingerprint": fingerprint,
        "recordings": len(items),
        "recordings_failed": len(crops.failures),
        "model_audio_seconds": round(crops.model_seconds, 3),
        "crops": len(crops),
        "iterations": settings.iterations,
        "epochs_per_iteration": epochs,  # settings.epochs, or more to reach settings.min_steps
        "settings": asdict(settings) | {"target_layer": settings.target_layer},
        "held_back_masked_accuracy": {str(i): round(r.held_accuracy, 4) for i, r in last.items()},
        "held_back_chance_accuracy": {str(i): round(r.chance_accuracy, 4) for i, r in last.items()},
        "label_column": column,
    }


def _mel_features(mels: int):
    filters = mel_filters(mels)
    return lambda audio, valid: log_mel_frames(audio, filters)


def _logged_frontend_error(log_path: Path) -> float | None:
    """Iteration 0's held-back error from the log of the run being resumed (None: it did not run)."""
    with open(log_path, newline="", encoding="utf-8") as handle:
        row = next((row for row in csv.DictReader(handle) if row["iteration"] == "0"), None)
    return float(row["held_loss"]) if row is not None else None


def _layer_features(model, layer: int, device: torch.device):
    """Hidden states of ``layer`` (eval mode, no masking, padding masked out of attention); the caller
    drops padded frames."""
    def features(audio: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        model.eval()
        attention = (torch.arange(audio.shape[1])[None, :] < valid[:, None]).long()
        output = model(audio.to(device), attention_mask=attention.to(device), output_hidden_states=True)
        return output.hidden_states[layer]
    return features


def _frame_labels(items: Sequence[DatasetItem], crops: Crops, label_columns: Sequence[str],
                  column: str | None) -> tuple[np.ndarray | None, str | None]:
    """Each crop's recording label as an int (-1 without one), for the targets' PNMI; None without labels."""
    if column is None:
        column = DEFAULT_LABEL_COLUMN if DEFAULT_LABEL_COLUMN in label_columns else None
    elif column not in label_columns:
        raise BatError(f"--label-column {column!r} is not a column of annotations.csv ({', '.join(label_columns)})")
    if column is None:
        return None, None
    values = [item.labels.get(column, "") or "" for item in items]
    names = sorted({value for value in values if value})
    if len(names) < 2:
        return None, None
    codes = np.array([names.index(value) if value else -1 for value in values])
    return codes[crops.file_index], column


def _pnmi(stage: Stage, labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    targets = np.concatenate([stage.train_targets, stage.held_targets])
    frame_labels = np.repeat(labels[:, None], targets.shape[1], axis=1)
    valid = targets >= 0
    return pnmi(targets[valid], frame_labels[valid])


__all__ = ["PretrainResult", "PretrainSettings", "pretrain"]
