"""Which device runs the models, and in which precision: decided here once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
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
    """``auto``: fp32 on CPU, bf16 on GPUs that have it (else fp16). An explicit ``bf16`` is also
    accepted on CPUs that compute it natively (AVX512-BF16 / AMX), where it is opt-in: about 2x
    faster for transformer encoders, not bit-identical to fp32."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16" and device.type == "cpu":
        if cpu_supports_bf16():
            return torch.bfloat16
        raise DeviceError("--precision bf16 on CPU needs AVX512-BF16 or AMX, which this CPU lacks; use fp32 (or auto)")
    if precision in ("fp16", "bf16"):
        if device.type == "cpu":
            raise DeviceError(f"precision {precision} is for GPUs; on CPU use fp32 (or auto)")
        return torch.float16 if precision == "fp16" else torch.bfloat16
    if precision != "auto":
        raise DeviceError(f"unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def cpu_supports_bf16() -> bool:
    """Native bf16 matrix maths on this CPU (oneDNN's own check)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def to_host(tensors: Sequence[torch.Tensor]) -> Callable[[], list[np.ndarray]]:
    """Device tensors as numpy arrays, through a collector. On CUDA the copies go into pinned host memory
    without blocking, behind an event, so a runner encoder can launch its next batch before it waits for
    these (no host sync per batch); elsewhere they are made at once. The one copy-back every strategy uses."""
    if not tensors or tensors[0].device.type != "cuda":
        arrays = [tensor.cpu().numpy() for tensor in tensors]
        return lambda: arrays
    host = [torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True) for tensor in tensors]
    for target, tensor in zip(host, tensors):
        target.copy_(tensor, non_blocking=True)
    copied = torch.cuda.Event()
    copied.record(torch.cuda.current_stream(tensors[0].device))

    def collect() -> list[np.ndarray]:
        copied.synchronize()
        return [target.numpy() for target in host]

    return collect
