"""Training: random fixed-length crops of bat-core mels, EMA codebook, checkpoints, resume.

Memory does not grow with the corpus or with file length: mels are computed through
bat-core's runner into the store, normalisation statistics are summed block by block, each
crop is read from its file on its own, and the held-back files are scored through the runner
one window at a time.

Determinism: the crops of step s come from ``default_rng([seed, s])`` and torch is
reseeded with ``(seed, s)`` before each step, so a run resumed from a checkpoint (model,
optimiser, EMA buffers) draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bat_core.dataset import Dataset
from bat_core.device import resolve_device
from bat_core.errors import BatError
from bat_core.mels import MelConfig
from bat_core.metrics import code_counts, perplexity, usage
from bat_core.progress import progress_bar
from bat_core.runner import RunOptions
from bat_vqvae.artefact import VQVAETokenizer, is_trained_model
from bat_vqvae.checkpoint import (
    checkpoint_dirs,
    latest_checkpoint,
    load_checkpoint,
    read_state,
    remove_checkpoints,
    require_same_data,
    require_same_settings,
    save_checkpoint,
)
from bat_vqvae.config import TrainConfig, VQVAEConfig
from bat_vqvae.corpus import mel_corpus
from bat_vqvae.crops import CropBatch, random_crops, split_holdout
from bat_vqvae.device_recipe import learning_rate
from bat_vqvae.guard import LossGuard, NonFiniteLossError
from bat_vqvae.holdout import score_holdout
from bat_vqvae.mel_files import MelFile
from bat_vqvae.model import VQVAE, codebook_entries
from bat_vqvae.normalizer import MelNormalizer, MelStatistics
from bat_vqvae.train_log import TrainLog

log = logging.getLogger(__name__)
FAILED_NAMES_SHOWN = 10


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    given: int  # files the dataset held
    training_files: list[str]
    holdout_files: list[str]
    failed: dict[str, str]  # file name -> reason: not used (or not scored) at all
    holdout_usage: float | None
    holdout_perplexity: float | None
    holdout_mse: float | None
    samples_per_second: float

    def line(self) -> str:
        used = len(self.training_files) + len(self.holdout_files)
        text = (f"vqvae train: {self.given} given, {used} used ({len(self.training_files)} training, "
                f"{len(self.holdout_files)} held back), {len(self.failed)} failed")
        if self.failed:
            names = sorted(self.failed)
            more = f" and {len(names) - FAILED_NAMES_SHOWN} more" if len(names) > FAILED_NAMES_SHOWN else ""
            text += f" ({', '.join(names[:FAILED_NAMES_SHOWN])}{more}; listed in config.json)"
        text += f"; {self.steps} steps, {self.samples_per_second:.1f} crops/s"
        if self.holdout_mse is not None:
            text += (f"; held-back files: usage {100 * self.holdout_usage:.1f}%, perplexity "
                     f"{self.holdout_perplexity:.1f}, reconstruction MSE {self.holdout_mse:.3f}")
        return f"{text} -> {self.model_dir}"


def masked_mse(reconstruction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """MSE over real frames; ``mask=None``: every frame is real (decided on the host)."""
    if mask is None:
        return F.mse_loss(reconstruction.float(), target)
    weights = mask[:, None, :].expand_as(target).float()
    return ((reconstruction.float() - target) ** 2 * weights).sum() / weights.sum().clamp(min=1)


def fit_normalizer(files: Sequence[MelFile]) -> MelNormalizer:
    """Per-band statistics of the training files, each streamed from disk in blocks."""
    statistics = MelStatistics()
    for mel in files:
        for block in mel.blocks():
            statistics.add(block)
    return statistics.normalizer()


def train(
    dataset: Dataset,
    model_dir: str | Path,
    model_config: VQVAEConfig = VQVAEConfig(),
    train_config: TrainConfig = TrainConfig(),
    mel_config: MelConfig = MelConfig(),
    *,
    device: str | torch.device = "auto",
    resume: bool = False,
    overwrite: bool = False,
    options: RunOptions = RunOptions(),
) -> TrainResult:
    """Train, save the model to ``model_dir``, score the held-back files. Every file is accounted for in the
    result (``failed``: name -> reason) and in config.json; an existing model is replaced only with ``overwrite``."""
    model_dir = Path(model_dir)
    if model_config.n_mels != mel_config.n_mels:
        model_config = replace(model_config, n_mels=mel_config.n_mels)
    checkpoints = model_dir / "checkpoints"
    latest = latest_checkpoint(checkpoints) if resume else None
    _refuse_replacing(model_dir, latest, resume, overwrite)
    state = None
    if latest is not None:
        state = read_state(latest)
        require_same_settings(latest, state, model_config, train_config, mel_config)
    torch_device = resolve_device(device) if isinstance(device, str) else device

    corpus = mel_corpus(dataset, mel_config, options)
    names = sorted(corpus.files)
    if not names:
        problems = "; ".join(f"{name}: {reason}" for name, reason in list(corpus.failed.items())[:3])
        raise BatError(f"no usable recording to train on among the {len(dataset)} selected"
                       + (f" ({problems})" if problems else ""))
    data = corpus.fingerprint()
    if latest is not None:
        require_same_data(latest, state, data)
    train_index, holdout_index = split_holdout(names, train_config.holdout_fraction, train_config.seed)
    train_names = [names[i] for i in train_index]
    holdout_names = [names[i] for i in holdout_index]
    train_files = [corpus.files[name] for name in train_names]

    torch.manual_seed(train_config.seed)
    model = VQVAE(model_config).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    if latest is not None:
        start_step, normalizer = load_checkpoint(latest, model, optimizer, torch_device)
        log.info("resumed from %s (step %d)", latest, start_step)
    else:
        remove_checkpoints(checkpoints)
        start_step = 0
        normalizer = fit_normalizer(train_files)
        if model_config.learns_codebook:  # fsq has no codebook to place
            initialise_codebook(model, train_files, train_names, normalizer, train_config, torch_device)

    started = time.perf_counter()
    _steps(model, optimizer, train_files, train_names, normalizer, start_step, train_config, torch_device,
           lambda step: save_checkpoint(checkpoints / f"step_{step:07d}", model, optimizer, normalizer, step,
                                        model_config, train_config, mel_config, data),
           TrainLog(model_dir, start_step), options.show_progress)
    elapsed = time.perf_counter() - started

    tokenizer = VQVAETokenizer(model, normalizer, mel_config, {
        "trained_steps": max(train_config.steps, start_step), "train": asdict(train_config), "data": data,
        "training_files": len(train_names), "holdout_files": holdout_names, "failed_files": dict(corpus.failed),
    })
    tokenizer.save(model_dir)
    holdout_items = [item for item in dataset if item.file_name in set(holdout_names)]
    scores = score_holdout(tokenizer, holdout_items, options)
    failed = {**corpus.failed, **{name: f"hold-out evaluation: {reason}" for name, reason in scores.failures.items()}}
    tokenizer.metadata.update(failed_files=failed, holdout={"usage": scores.usage, "perplexity": scores.perplexity,
                                                            "mse": scores.mse, "files_scored": len(scores.files)})
    tokenizer.save_config(model_dir)
    steps_run = max(0, train_config.steps - start_step)
    return TrainResult(model_dir, train_config.steps, len(dataset), train_names, holdout_names, failed, scores.usage,
                       scores.perplexity, scores.mse,
                       steps_run * train_config.batch_size / elapsed if elapsed > 0 else 0.0)


def _refuse_replacing(model_dir: Path, latest: Path | None, resume: bool, overwrite: bool) -> None:
    """A trained model, or an unfinished run's checkpoints, are replaced only on request."""
    if resume and overwrite:
        raise BatError("--resume continues a training run and --overwrite starts a new one: pass one of them")
    if overwrite or latest is not None:
        return
    if is_trained_model(model_dir):
        raise BatError(f"{model_dir} already holds a trained VQ-VAE: pass --overwrite to replace it, or --model DIR "
                       "(or --tag NAME) to train another beside it")
    if checkpoint_dirs(model_dir / "checkpoints"):
        raise BatError(f"{model_dir} holds checkpoints of an unfinished training run: pass --resume to continue it, "
                       "or --overwrite to start again")


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def step_crops(files: list[MelFile], normalizer: MelNormalizer, start_step: int, config: TrainConfig,
               prefetch: bool) -> Generator[CropBatch, None, None]:
    """The crops of each step, drawn from ``default_rng([seed, step])`` whatever the order of work. With
    ``prefetch`` (on a GPU) the next step's crops are read on a thread while the device runs this one: reading
    256 crops took 26-45 ms of host time per step on this project's CPU, which at batch 256 would otherwise
    leave the GPU waiting every step. On a CPU the thread would only take cores from the model."""

    def crops_of(step: int) -> CropBatch:
        return random_crops(files, config.batch_size, config.crop_frames, np.random.default_rng([config.seed, step]),
                            normalizer)

    if not prefetch:
        for step in range(start_step, config.steps):
            yield crops_of(step)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crops") as pool:
        pending = pool.submit(crops_of, start_step) if start_step < config.steps else None
        for step in range(start_step, config.steps):
            crops = pending.result()
            pending = pool.submit(crops_of, step + 1) if step + 1 < config.steps else None
            yield crops


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast only on a CUDA GPU that computes in bf16 (Ampere and later); fp32 elsewhere."""
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def _steps(model: VQVAE, optimizer: torch.optim.Optimizer, files: list[MelFile], names: list[str],
           normalizer: MelNormalizer, start_step: int, config: TrainConfig, device: torch.device, checkpoint,
           train_log: TrainLog, show_progress: bool) -> None:
    """Optimiser steps ``start_step .. config.steps``; losses checked (with the files that fed them) before every
    log line and checkpoint."""
    guard = LossGuard()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16_supported(device) else nullcontext()
    bar = progress_bar(max(0, config.steps - start_step), "train", show_progress, unit="step")
    model.train()
    batches = step_crops(files, normalizer, start_step, config, prefetch=device.type == "cuda")
    try:
        for step, crops in zip(range(start_step, config.steps), batches):
            torch.manual_seed(config.seed * 1_000_003 + step)
            batch = _to_device(crops.data, device)
            mask = None if crops.full else _to_device(crops.mask, device)
            with autocast:
                out = model(batch)
            reconstruction = masked_mse(out["reconstruction"], batch, mask)
            loss = reconstruction + out["commitment"]
            guard.note(step + 1, loss, [names[index] for index in crops.files])
            optimizer.zero_grad(set_to_none=True)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config.lr, config.warmup_steps, step)
            loss.backward()
            optimizer.step()
            done = step + 1
            logging_now = done % config.log_every == 0 or done == config.steps
            saving_now = done % config.checkpoint_every == 0 or done == config.steps
            if logging_now or saving_now:
                guard.check()
            if logging_now:
                counts = code_counts(codebook_entries(out["codes"].cpu().numpy(), model.config),
                                     model.config.codebook_entries)
                train_log.append([done, done * config.batch_size, loss.item(), reconstruction.item(), out["commitment"].item(), usage(counts),
                                  perplexity(counts)])
            if saving_now:
                checkpoint(done)
            bar.update(1)
    finally:
        batches.close()
        bar.close()
        train_log.close()
    model.eval()


@torch.no_grad()
def initialise_codebook(model: VQVAE, files: list[MelFile], names: list[str], normalizer: MelNormalizer,
                        config: TrainConfig, device: torch.device) -> None:
    """k-means (bat-core's) over encoder outputs of random crops, before the first step."""
    rng = np.random.default_rng([config.seed, 1 << 20])
    wanted = max(config.kmeans_init_vectors, model.config.codes)
    vectors, collected = [], 0
    while collected < wanted:
        crops = random_crops(files, config.batch_size, config.crop_frames, rng, normalizer)
        latents = model.encode_vectors(_to_device(crops.data, device))
        finite = torch.isfinite(latents).flatten(1).all(dim=1).cpu().numpy()
        if not finite.all():
            bad = sorted({names[index] for index, ok in zip(crops.files, finite) if not ok})
            raise NonFiniteLossError(
                f"training stopped before its first step: the encoder's outputs on crops of {', '.join(bad)} are not "
                "finite; check these recordings (bat-core check) and leave them out or fix them, then train again")
        vectors.append(latents.permute(0, 3, 2, 1).reshape(-1, latents.shape[1]).float())
        collected += len(vectors[-1])
    per_batch = int(latents.shape[0] * latents.shape[2] * latents.shape[3])
    model.quantizer.initialise(torch.cat(vectors)[:wanted], config.kmeans_iters, config.seed, per_batch)
