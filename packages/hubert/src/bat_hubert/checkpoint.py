"""A pretraining checkpoint in one safetensors file: model, head, optimizer moments, targets, and
where the run stood (in the file's metadata). Written after every epoch, atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from bat_hubert.train import Stage

CHECKPOINT = "pretrain_checkpoint.safetensors"


def save_checkpoint(path: Path, stage: Stage, iteration: int, epochs_done: int, settings_key: str) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{name}": value.detach().cpu().contiguous() for name, value in stage.model.state_dict().items()}
    tensors.update({f"head.{name}": value.detach().cpu().contiguous() for name, value in stage.head.state_dict().items()})
    optimizer = stage.optimizer.state_dict()
    for index, state in optimizer["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["targets.train"] = torch.from_numpy(stage.train_targets)
    tensors["targets.held"] = torch.from_numpy(stage.held_targets)
    metadata = {"iteration": str(iteration), "epochs_done": str(epochs_done), "settings": settings_key,
                "param_groups": json.dumps(optimizer["param_groups"])}
    partial = path.with_suffix(".partial")
    save_file(tensors, partial, metadata=metadata)
    os.replace(partial, path)


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return metadata, tensors


def restore_stage(stage: Stage, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    """Load a checkpoint's weights, optimizer and targets into a stage built with the same shapes."""
    stage.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    stage.head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    stage.optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})
    stage.train_targets = tensors["targets.train"].numpy().astype(np.int64)
    stage.held_targets = tensors["targets.held"].numpy().astype(np.int64)
