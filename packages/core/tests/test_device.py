import pytest
import torch

from bat_core.device import compute_dtype, cpu_supports_bf16, resolve_device
from bat_core.errors import DeviceError


def test_auto_picks_best_available():
    device = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert device.type == expected


def test_explicit_cpu_and_unknown():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU is visible; use --device cpu"):
        resolve_device("cuda")


def test_dtype_policy():
    cpu = torch.device("cpu")
    assert compute_dtype(cpu) == torch.float32
    assert compute_dtype(cpu, "fp32") == torch.float32
    with pytest.raises(DeviceError, match="on CPU use fp32"):
        compute_dtype(cpu, "fp16")
    with pytest.raises(DeviceError, match="unknown precision"):
        compute_dtype(cpu, "fp8")


def test_bf16_on_cpu_is_opt_in_and_only_where_native():
    cpu = torch.device("cpu")
    if cpu_supports_bf16():
        assert compute_dtype(cpu, "bf16") == torch.bfloat16
    else:
        with pytest.raises(DeviceError, match="AVX512-BF16 or AMX"):
            compute_dtype(cpu, "bf16")
    assert compute_dtype(cpu) == torch.float32
    assert compute_dtype(torch.device("mps")) == torch.float16
    assert compute_dtype(torch.device("cuda"), "fp16") == torch.float16
