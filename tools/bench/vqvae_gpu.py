"""VQ-VAE training throughput on the device: bat-vqvae's device recipe vs the naive recipe, same crops seen.

Rows (each trains on the same number of crops, on the same corpus and device):
- naive: the naive recipe of tools/bench/vqvae.py (uniform codebook, batch 8, Adam 3e-4, 50 warm-up steps);
- bat-vqvae b8: bat-vqvae at today's CPU recipe (batch 8, 3e-4), on this device;
- bat-vqvae device: bat-vqvae at the recipe ``bat-vqvae train`` picks for this device (batch 256, 1e-3,
  50 warm-up steps, bf16 autocast on a CUDA GPU that has it).
Each row: training crops/s (optimiser steps only, as TrainResult measures them), codebook usage and
perplexity on the held-back files, reconstruction MSE (normalised units for bat-vqvae, dB^2 for naive).
Goal (issue 16): on a GPU, bat-vqvae device >= 5x naive crops/s at >= 90% held-back usage.

    python tools/bench/vqvae_gpu.py --crops 40000            # on the lent H100 (shared/bats + demo corpus)
    python tools/bench/vqvae_gpu.py --smoke                  # tiny sizes (the default on a CPU): proves it runs
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from vqvae import build_corpus, evaluate_naive, train_naive  # noqa: E402  (the naive recipe, one definition)

from bat_core.dataset import Dataset  # noqa: E402
from bat_core.demo import write_demo_corpus  # noqa: E402
from bat_core.device import resolve_device  # noqa: E402
from bat_core.mels import MelConfig, load_mels  # noqa: E402
from bat_core.runner import RunOptions  # noqa: E402
from bat_vqvae import TrainConfig, VQVAEConfig, train  # noqa: E402
from bat_vqvae.crops import split_holdout  # noqa: E402
from bat_vqvae.device_recipe import CPU_RECIPE, recipe_for  # noqa: E402

SMOKE_MODEL = dict(hidden=16, code_dim=8)  # 256 codes: the naive evaluation counts usage over 256


def smoke_corpus(work: Path) -> Dataset:
    return Dataset.from_root(write_demo_corpus(work / "demo", n_files=6, seed=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=40_000, help="training crops seen per row (default: 40000)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny model, demo corpus, 256 crops: runs on a CPU")
    parser.add_argument("--device-row-only", action="store_true",
                        help="only the device recipe's row (usage at long training, e.g. --crops 160000)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu" and not args.smoke:
        print("no GPU here: running --smoke (tiny sizes) to show the script works; the numbers mean nothing")
        args.smoke = True
    crops = 256 if args.smoke else args.crops
    work = Path(tempfile.mkdtemp(prefix="bench_vqvae_gpu_"))
    try:
        dataset = smoke_corpus(work) if args.smoke else build_corpus(work)
        mel_config = MelConfig(n_mels=32) if args.smoke else MelConfig()
        model_config = VQVAEConfig(n_mels=mel_config.n_mels, **(SMOKE_MODEL if args.smoke else {}))
        crop = 32 if args.smoke else TrainConfig().crop_frames
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"device: {name}; {crops} crops per row, crop {crop} frames; model {model_config.codes} codes")

        mels_by_name = load_mels(dataset, mel_config, options=RunOptions(show_progress=False))
        names = sorted(mels_by_name)
        train_index, holdout_index = split_holdout(names, 0.1, 0)
        rows = []
        if not args.device_row_only:
            naive_kwargs = dict(codes=model_config.codes, dim=model_config.code_dim, hidden=model_config.hidden)
            naive, naive_rate = train_naive([mels_by_name[names[i]] for i in train_index], max(1, crops // 8), 8, crop,
                                            seed=0, device=device, model_kwargs=naive_kwargs)
            naive_scores = evaluate_naive(naive, [mels_by_name[names[i]] for i in holdout_index])
            rows = [("naive b8", naive_rate, naive_scores)]

        base = TrainConfig(crop_frames=crop, kmeans_init_vectors=512 if args.smoke else TrainConfig().kmeans_init_vectors)
        recipes = (("bat-vqvae b8", CPU_RECIPE), ("bat-vqvae device", recipe_for(device.type)))
        for label, recipe in recipes[1:] if args.device_row_only else recipes:
            steps = max(1, crops // recipe.batch_size)
            config = replace(base, steps=steps, batch_size=recipe.batch_size, lr=recipe.lr,
                             warmup_steps=recipe.warmup_steps, checkpoint_every=steps, log_every=max(1, steps // 10))
            result = train(dataset, work / label.replace(" ", "_"), model_config, config, mel_config, device=device,
                           options=RunOptions(show_progress=False), overwrite=True)
            rows.append((f"{label} (batch {recipe.batch_size})", result.samples_per_second,
                         (result.holdout_usage, result.holdout_perplexity, result.holdout_mse)))

        print(f"{'':28s} {'crops/s':>9s} {'usage':>7s} {'perplexity':>11s} {'MSE':>8s}")
        for label, rate, (usage, ppl, mse) in rows:
            print(f"{label:28s} {rate:9.1f} {100 * usage:6.1f}% {ppl:11.1f} {mse:8.3f}")
        if not args.device_row_only:
            print(f"bat-vqvae device / naive crops/s: {rows[2][1] / naive_rate:.2f}x; "
                  f"bat-vqvae b8 / naive: {rows[1][1] / naive_rate:.2f}x "
                  "(naive MSE in dB^2, bat-vqvae's in normalised units)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
