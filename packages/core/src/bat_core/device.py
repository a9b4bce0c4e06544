"""Which device runs the models, and in which precision: decided here once."""

from __future__ import annotations

from typing import Literal

import torch

from bat_core.errors import DeviceError

Precision = Literal["auto", "fp32", "fp16", "bf16"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda > mps > cpu; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name} asked for CUDA, but no CUDA GPU is visible; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif device.type == "mps" and not _mps_available():
        raise DeviceError(f"--device {name} asked for Apple MPS, which is not available here; use --device cpu")
    return device


def compute_dtype(device: torch.device, precision: Precision = "auto") -> torch.dtype:
    """fp32 on CPU (half precision is slower there); bf16 on GPUs that have it, else fp16."""
    if precision == "fp32":
        return torch.float32
    if precision in ("fp16", "bf16"):
        if device.type == "cpu":
            raise DeviceError(f"precision {precision} is for GPUs; on CPU use fp32 (or auto)")
        return torch.float16 if precision == "fp16" else torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
