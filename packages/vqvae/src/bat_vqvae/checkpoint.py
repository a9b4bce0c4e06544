"""Training checkpoints (safetensors + JSON, no pickle) and what ``--resume`` accepts.

A checkpoint records everything its weights depend on: model, training, mel and time-expansion
settings, and a fingerprint of the data (file names and the source fingerprints of their
recordings). ``--resume`` refuses one that differs in any of them, naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from bat_core.errors import ConfigMismatchError
from bat_core.mels import MelConfig
from bat_vqvae.config import TrainConfig, VQVAEConfig
from bat_vqvae.guard import require_finite_weights
from bat_vqvae.model import VQVAE
from bat_vqvae.normalizer import MelNormalizer
from bat_vqvae.quantizer import restore_flags

STATE_FILE = "state.json"
TENSORS_FILE = "checkpoint.safetensors"
RUN_LENGTH_SETTINGS = ("steps", "checkpoint_every", "log_every")  # a resumed run may change these


def data_fingerprint(sources: dict[str, str]) -> str:
    """Of ``{file name: source fingerprint}``: other files, or a changed recording, give another one."""
    text = json.dumps(sorted(sources.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(directory: Path, model: VQVAE, optimizer: torch.optim.Optimizer, normalizer: MelNormalizer,
                    step: int, model_config: VQVAEConfig, train_config: TrainConfig, mel_config: MelConfig,
                    data: dict) -> None:
    """Written beside its final name, then renamed: a killed run leaves no half checkpoint to resume from."""
    require_finite_weights(model, str(directory))
    temporary = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    tensors = {f"model.{k}": (v.float() if v.dtype == torch.bool else v).detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for index, state in optimizer_state["state"].items():
        for key, value in state.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["normalizer.mean"] = torch.from_numpy(normalizer.mean)
    tensors["normalizer.std"] = torch.from_numpy(normalizer.std)
    save_file(tensors, str(temporary / TENSORS_FILE))
    (temporary / STATE_FILE).write_text(json.dumps({
        "step": step, "model": asdict(model_config), "train": asdict(train_config), "mel": asdict(mel_config),
        "data": data, "param_groups": optimizer_state["param_groups"],
    }, indent=2, default=str))
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(temporary, directory)


def checkpoint_dirs(checkpoints: Path) -> list[Path]:
    return sorted(p for p in checkpoints.glob("step_*") if (p / STATE_FILE).is_file())


def latest_checkpoint(checkpoints: Path) -> Path | None:
    found = checkpoint_dirs(checkpoints)
    return found[-1] if found else None


def remove_checkpoints(checkpoints: Path) -> None:
    """Before a fresh run (``--overwrite``): an old run's later steps must never be resumed into this one."""
    for directory in checkpoints.glob("step_*"):
        shutil.rmtree(directory)


def read_state(directory: Path) -> dict:
    return json.loads((directory / STATE_FILE).read_text())


def require_same_settings(directory: Path, state: dict, model_config: VQVAEConfig, train_config: TrainConfig,
                          mel_config: MelConfig) -> None:
    """ConfigMismatchError unless the checkpoint's model, training, mel and time-expansion settings are these."""
    asked_mel = json.loads(json.dumps(asdict(mel_config), default=str))
    made_mel = dict(state["mel"])
    checks = [
        ("model settings", state["model"], json.loads(json.dumps(asdict(model_config)))),  # tuples as JSON lists
        ("training settings", _without(state["train"], RUN_LENGTH_SETTINGS), _without(asdict(train_config), RUN_LENGTH_SETTINGS)),
        ("time expansion", made_mel.pop("time_expansion", None), asked_mel.pop("time_expansion")),
        ("mel settings", made_mel, asked_mel),
    ]
    for what, made, asked in checks:
        if made != asked:
            raise ConfigMismatchError(
                f"--resume refuses {directory}: it was made with other {what} ({_changes(made, asked)}); resume with "
                "the same settings, or train afresh with --overwrite")


def require_same_data(directory: Path, state: dict, data: dict) -> None:
    made = state.get("data") or {}
    if made.get("fingerprint") != data["fingerprint"]:
        raise ConfigMismatchError(
            f"--resume refuses {directory}: it was trained on other data ({made.get('files', '?')} files, fingerprint "
            f"{made.get('fingerprint', 'none')}; this run has {data['files']} files, fingerprint {data['fingerprint']}: "
            "files were added, removed, replaced or changed); resume on the same files, or train afresh with --overwrite")


def load_checkpoint(directory: Path, model: VQVAE, optimizer: torch.optim.Optimizer,
                    device: torch.device) -> tuple[int, MelNormalizer]:
    """Weights, optimiser state and normalisation statistics; the step reached."""
    state = read_state(directory)
    tensors = load_file(str(directory / TENSORS_FILE), device=str(device))
    model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    model_state = restore_flags(model_state)
    model.load_state_dict(model_state)
    optimizer_state: dict = {"state": {}, "param_groups": state["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state["state"].setdefault(int(index), {})[name] = value.cpu() if name == "step" else value
    optimizer.load_state_dict(optimizer_state)
    normalizer = MelNormalizer(tensors["normalizer.mean"].cpu().numpy(), tensors["normalizer.std"].cpu().numpy())
    return int(state["step"]), normalizer


def _without(values: dict, keys: tuple[str, ...]) -> dict:
    return {k: v for k, v in values.items() if k not in keys}


def _changes(made, asked) -> str:
    if not isinstance(made, dict) or not isinstance(asked, dict):
        return f"{made} there, {asked} now"
    keys = sorted(k for k in made.keys() | asked.keys() if made.get(k) != asked.get(k))
    return ", ".join(f"{k} {made.get(k, '<absent>')} there, {asked.get(k, '<absent>')} now" for k in keys)
