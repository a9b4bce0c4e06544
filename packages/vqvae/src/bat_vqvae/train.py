"""Training: random fixed-length crops of bat-core mels, EMA codebook, checkpoints, resume.

Determinism: the crops of step s come from ``default_rng([seed, s])`` and torch is
reseeded with ``(seed, s)`` before each step, so a run resumed from a checkpoint (model,
optimiser, EMA buffers) draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from bat_core.dataset import Dataset
from bat_core.device import resolve_device
from bat_core.errors import BatError, ConfigMismatchError
from bat_core.mels import MelConfig, load_mels
from bat_core.metrics import code_counts, perplexity, usage
from bat_core.pipeline import progress
from bat_vqvae.artefact import VQVAETokenizer
from bat_vqvae.config import TrainConfig, VQVAEConfig
from bat_vqvae.data import MelNormalizer, random_crops, split_holdout
from bat_vqvae.model import VQVAE

log = logging.getLogger(__name__)
LOG_COLUMNS = ["step", "loss", "reconstruction_mse", "commitment", "batch_usage", "batch_perplexity"]


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    holdout_files: list[str]
    holdout_usage: float
    holdout_perplexity: float
    holdout_mse: float
    samples_per_second: float

    def line(self) -> str:
        return (f"vqvae: {self.steps} steps, {self.samples_per_second:.1f} crops/s; held-back files "
                f"({len(self.holdout_files)}): usage {100 * self.holdout_usage:.1f}%, perplexity "
                f"{self.holdout_perplexity:.1f}, reconstruction MSE {self.holdout_mse:.3f} -> {self.model_dir}")


def masked_mse(reconstruction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if bool(mask.all()):  # crops from files longer than a crop: nothing to mask
        return F.mse_loss(reconstruction.float(), target)
    weights = mask[:, None, :].expand_as(target).float()
    return ((reconstruction.float() - target) ** 2 * weights).sum() / weights.sum().clamp(min=1)


def evaluate(tokenizer: VQVAETokenizer, mels: list[np.ndarray]) -> tuple[float, float, float]:
    """Codebook usage, perplexity and normalised reconstruction MSE over whole files."""
    all_codes, errors, frames = [], 0.0, 0
    for mel in mels:
        codes = tokenizer.encode(mel)
        all_codes.append(codes)
        normalised = tokenizer.normalizer.normalise(mel)
        reconstructed = tokenizer.normalizer.normalise(tokenizer.decode(codes, n_frames=mel.shape[1]))
        errors += float(((normalised - reconstructed) ** 2).sum())
        frames += normalised.size
    counts = code_counts(all_codes, tokenizer.config.codes)
    return usage(counts), perplexity(counts), errors / max(frames, 1)


def train(
    dataset: Dataset,
    model_dir: str | Path,
    model_config: VQVAEConfig = VQVAEConfig(),
    train_config: TrainConfig = TrainConfig(),
    mel_config: MelConfig = MelConfig(),
    *,
    device: str = "auto",
    resume: bool = False,
    show_progress: bool = True,
    num_workers: int = 2,
) -> TrainResult:
    model_dir = Path(model_dir)
    if model_config.n_mels != mel_config.n_mels:
        model_config = VQVAEConfig(**{**asdict(model_config), "n_mels": mel_config.n_mels})
    mels_by_name = load_mels(dataset, mel_config, num_workers=num_workers, show_progress=show_progress)
    names = sorted(mels_by_name)
    if len(names) < 2:
        raise BatError(f"need at least 2 files with mel spectrograms to train, found {len(names)}")
    train_index, holdout_index = split_holdout(names, train_config.holdout_fraction, train_config.seed)
    train_mels = [mels_by_name[names[i]] for i in train_index]
    holdout_names = [names[i] for i in holdout_index]
    normalizer = MelNormalizer.fit(train_mels)
    train_mels = [normalizer.normalise(m) for m in train_mels]

    torch_device = resolve_device(device)
    torch.manual_seed(train_config.seed)
    model = VQVAE(model_config).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.lr)
    checkpoints = model_dir / "checkpoints"
    start_step = 0
    if resume and (latest := latest_checkpoint(checkpoints)) is not None:
        start_step = load_checkpoint(latest, model, optimizer, model_config, train_config, torch_device)
        log.info("resumed from %s (step %d)", latest, start_step)
    else:
        initialise_codebook(model, train_mels, train_config, torch_device)
    log_path = model_dir / "train_log.csv"
    _truncate_log(log_path, start_step)
    writer = _tensorboard(model_dir)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if torch_device.type == "cuda" else _null()

    model.train()
    started = time.perf_counter()
    for step in progress(range(start_step, train_config.steps), train_config.steps - start_step, "train", show_progress):
        rng = np.random.default_rng([train_config.seed, step])
        torch.manual_seed(train_config.seed * 1_000_003 + step)
        batch, mask = random_crops(train_mels, train_config.batch_size, train_config.crop_frames, rng)
        batch, mask = batch.to(torch_device), mask.to(torch_device)
        with autocast:
            out = model(batch)
        reconstruction = masked_mse(out["reconstruction"], batch, mask)
        loss = reconstruction + out["commitment"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = step + 1
        if done % train_config.log_every == 0 or done == train_config.steps:
            counts = code_counts(out["codes"].cpu().numpy(), model_config.codes)
            row = [done, loss.item(), reconstruction.item(), out["commitment"].item(), usage(counts), perplexity(counts)]
            _append_log(log_path, row)
            if writer is not None:
                for name, value in zip(LOG_COLUMNS[1:], row[1:]):
                    writer.add_scalar(name, value, done)
        if done % train_config.checkpoint_every == 0 or done == train_config.steps:
            save_checkpoint(checkpoints / f"step_{done:07d}", model, optimizer, normalizer, done,
                            model_config, train_config, mel_config)
    elapsed = time.perf_counter() - started
    if writer is not None:
        writer.close()

    tokenizer = VQVAETokenizer(model.cpu(), normalizer, mel_config, {
        "trained_steps": train_config.steps, "train": asdict(train_config),
        "training_files": len(train_index), "holdout_files": holdout_names,
    })
    tokenizer.save(model_dir)
    tokenizer = VQVAETokenizer.from_pretrained(model_dir)
    holdout_usage, holdout_perplexity, holdout_mse = evaluate(tokenizer, [mels_by_name[n] for n in holdout_names])
    steps_run = train_config.steps - start_step
    return TrainResult(model_dir, train_config.steps, holdout_names, holdout_usage, holdout_perplexity, holdout_mse,
                       steps_run * train_config.batch_size / elapsed if elapsed > 0 else 0.0)


@torch.no_grad()
def initialise_codebook(model: VQVAE, train_mels: list[np.ndarray], config: TrainConfig, device: torch.device) -> None:
    """k-means over encoder outputs of random crops, before the first step."""
    rng = np.random.default_rng([config.seed, 1 << 20])
    generator = torch.Generator().manual_seed(config.seed)
    vectors, collected = [], 0
    while collected < config.kmeans_init_vectors:
        batch, _ = random_crops(train_mels, config.batch_size, config.crop_frames, rng)
        latents = model.encode_vectors(batch.to(device))
        flat = latents.permute(0, 3, 2, 1).reshape(-1, latents.shape[1]).float().cpu()
        vectors.append(flat)
        collected += len(flat)
    per_batch = int(latents.shape[0] * latents.shape[2] * latents.shape[3])
    model.quantizer.initialise(torch.cat(vectors)[: config.kmeans_init_vectors], config.kmeans_iters, generator, per_batch)


def save_checkpoint(directory: Path, model: VQVAE, optimizer: torch.optim.Optimizer, normalizer: MelNormalizer,
                    step: int, model_config: VQVAEConfig, train_config: TrainConfig, mel_config: MelConfig) -> None:
    """Weights and optimiser state as safetensors, the rest as JSON: no pickle."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": (v.float() if v.dtype == torch.bool else v).detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for index, state in optimizer_state["state"].items():
        for key, value in state.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["normalizer.mean"] = torch.from_numpy(normalizer.mean)
    tensors["normalizer.std"] = torch.from_numpy(normalizer.std)
    save_file(tensors, str(directory / "checkpoint.safetensors"))
    (directory / "state.json").write_text(json.dumps({
        "step": step, "model": asdict(model_config), "train": asdict(train_config), "mel": asdict(mel_config),
        "param_groups": optimizer_state["param_groups"],
    }, indent=2, default=str))


def latest_checkpoint(checkpoints: Path) -> Path | None:
    found = sorted(p for p in checkpoints.glob("step_*") if (p / "state.json").is_file())
    return found[-1] if found else None


def load_checkpoint(directory: Path, model: VQVAE, optimizer: torch.optim.Optimizer, model_config: VQVAEConfig,
                    train_config: TrainConfig, device: torch.device) -> int:
    state = json.loads((directory / "state.json").read_text())
    if state["model"] != asdict(model_config):
        raise ConfigMismatchError(f"checkpoint {directory} was made with model {state['model']}, not {asdict(model_config)}")
    same_run = {k: v for k, v in state["train"].items() if k not in ("steps", "checkpoint_every", "log_every")}
    asked = {k: v for k, v in asdict(train_config).items() if k not in ("steps", "checkpoint_every", "log_every")}
    if same_run != asked:
        raise ConfigMismatchError(f"checkpoint {directory} was trained with {same_run}; --resume needs the same settings, got {asked}")
    tensors = load_file(str(directory / "checkpoint.safetensors"), device=str(device))
    model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    model_state["quantizer.initted"] = model_state["quantizer.initted"].bool()
    model.load_state_dict(model_state)
    optimizer_state: dict = {"state": {}, "param_groups": state["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state["state"].setdefault(int(index), {})[name] = value.cpu() if name == "step" else value
    optimizer.load_state_dict(optimizer_state)
    return int(state["step"])


def _truncate_log(path: Path, step: int) -> None:
    """A resumed run rewrites the log from its checkpoint on, so the CSV has no duplicate steps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    if step > 0 and path.is_file():
        with open(path, newline="") as handle:
            rows = [r for r in csv.reader(handle)][1:]
        rows = [r for r in rows if int(r[0]) <= step]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([LOG_COLUMNS, *rows])


def _append_log(path: Path, row: list) -> None:
    with open(path, "a", newline="") as handle:
        csv.writer(handle).writerow(row)


def _tensorboard(model_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: the CSV log always exists
        return None
    return SummaryWriter(str(model_dir / "tensorboard"))


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
