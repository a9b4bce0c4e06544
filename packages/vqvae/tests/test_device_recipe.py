"""GPU training settings only where a CUDA GPU is; a CPU keeps today's recipe."""

import pytest
import torch

import bat_core.device
import bat_vqvae.training
from bat_vqvae.cli import main
from bat_vqvae.config import TrainConfig
from bat_vqvae.device_recipe import CPU_RECIPE, GPU_RECIPE, learning_rate, recipe_for, steps_for_crops
from bat_vqvae.training import bf16_supported


def test_cpu_keeps_todays_recipe_and_only_cuda_gets_the_gpu_one():
    defaults = TrainConfig()
    assert (CPU_RECIPE.batch_size, CPU_RECIPE.lr, CPU_RECIPE.warmup_steps) == (defaults.batch_size, defaults.lr, 0)
    assert recipe_for("cpu") == recipe_for("mps") == CPU_RECIPE
    assert recipe_for("cuda") == GPU_RECIPE and GPU_RECIPE.batch_size >= 64 and GPU_RECIPE.warmup_steps > 0


def test_warm_up_is_linear_then_constant_and_a_function_of_the_step_alone():
    assert [learning_rate(1e-3, 4, step) for step in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert learning_rate(3e-4, 0, 0) == 3e-4


def test_bf16_only_on_a_cuda_gpu_that_has_it(monkeypatch):
    assert not bf16_supported(torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)  # a pre-Ampere card
    assert not bf16_supported(torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert bf16_supported(torch.device("cuda"))


def ask_train_on(device: str, monkeypatch) -> dict:
    """``bat-vqvae train`` as if on ``device``: the TrainConfig it asks for lands in the returned dict."""
    asked = {}

    def fake_train(dataset, model_dir, model_config, train_config, mel_config, **kwargs):
        asked["train"] = train_config
        raise SystemExit(0)

    monkeypatch.setattr(bat_core.device, "resolve_device", lambda name="auto": torch.device(device))
    monkeypatch.setattr(bat_vqvae.training, "train", fake_train)
    return asked


@pytest.mark.parametrize(("device", "batch", "lr", "warmup"), [("cpu", 8, 3e-4, 0), ("cuda", 256, 1e-3, 50)])
def test_the_cli_picks_the_recipe_of_the_device_it_trains_on(demo_root, monkeypatch, device, batch, lr, warmup):
    """The device is mocked: which recipe ``bat-vqvae train`` asks for, with no GPU needed."""
    asked = ask_train_on(device, monkeypatch)
    with pytest.raises(SystemExit):
        main(["train", "--root", str(demo_root), "-q"])
    chosen = asked["train"]
    assert (chosen.batch_size, chosen.lr, chosen.warmup_steps) == (batch, lr, warmup)
    with pytest.raises(SystemExit):
        main(["train", "--root", str(demo_root), "-q", "--batch-size", "32", "--lr", "0.002"])
    assert (asked["train"].batch_size, asked["train"].lr) == (32, 0.002), "explicit options win"


@pytest.mark.parametrize(("device", "steps"), [("cpu", 1000), ("cuda", 32)])
def test_crops_set_the_steps_from_the_device_s_batch(demo_root, monkeypatch, device, steps):
    """``--crops 8000``: 1000 steps of 8 on a CPU, 32 steps of 256 (8192 crops: rounded up) on a GPU."""
    asked = ask_train_on(device, monkeypatch)
    with pytest.raises(SystemExit):
        main(["train", "--root", str(demo_root), "-q", "--crops", "8000"])
    assert asked["train"].steps == steps and steps_for_crops(8000, asked["train"].batch_size) == steps
    with pytest.raises(SystemExit) as refused:
        main(["train", "--root", str(demo_root), "-q", "--crops", "8000", "--steps", "5"])
    assert refused.value.code == 2, "--crops and --steps are one choice"
