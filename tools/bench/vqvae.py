"""VQ-VAE: the naive recipe vs bat-vqvae, same spectrograms, same steps, one run.

Corpus: the real recordings in shared/bats plus the synthetic demo corpus, as bat-core
mels (48 kHz, time expansion auto). The same files are held back for both models.

The naive recipe, fixed only as much as needed to run: two stride-2 convs, 256 codes
of dim 128 initialised uniform(-1/K, 1/K), straight-through estimator with codebook and
commitment losses, 50 warm-up steps (linear LR warm-up), raw log-mel input, crops of the
same length, batch 8. Frame counts are cropped to multiples of 4 so its output fits.

Prints, for each: codebook usage on held-back files (share of 256 codes used),
perplexity, reconstruction MSE (dB^2, on held-back files), training crops/s.

    python tools/bench/vqvae.py --steps 1000
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bat_core.dataset import Dataset
from bat_core.demo import write_demo_corpus
from bat_core.mels import MelConfig, load_mels
from bat_core.metrics import code_counts, perplexity, usage
from bat_core.runner import RunOptions
from bat_core.testing import find_shared_bats
from bat_vqvae import TrainConfig, VQVAEConfig, train
from bat_vqvae.artefact import VQVAETokenizer
from bat_vqvae.crops import split_holdout


class NaiveVQVAE(nn.Module):
    def __init__(self, codes: int = 256, dim: int = 128, hidden: int = 128):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, hidden, 4, 2, 1), nn.ReLU(), nn.Conv2d(hidden, dim, 4, 2, 1))
        self.decoder = nn.Sequential(nn.ConvTranspose2d(dim, hidden, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(hidden, 1, 4, 2, 1))
        self.codebook = nn.Embedding(codes, dim)
        self.codebook.weight.data.uniform_(-1 / codes, 1 / codes)

    def forward(self, mels):
        z = self.encoder(mels.unsqueeze(1))
        b, d, f, t = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.weight.t() + self.codebook.weight.pow(2).sum(1)
        indices = distances.argmin(1)
        quantised = self.codebook(indices)
        codebook_loss = F.mse_loss(quantised, flat.detach())
        commitment = 0.25 * F.mse_loss(flat, quantised.detach())
        quantised = flat + (quantised - flat).detach()
        out = self.decoder(quantised.reshape(b, f, t, d).permute(0, 3, 1, 2)).squeeze(1)
        return out, indices.reshape(b, f, t), codebook_loss + commitment


def build_corpus(work: Path) -> Dataset:
    """One project root holding the real recordings and the demo corpus (audio linked, not copied)."""
    root = work / "corpus"
    audio = root / "data" / "audio"
    audio.mkdir(parents=True)
    demo = write_demo_corpus(work / "demo", n_files=24, seed=0)
    sources = [demo / "data" / "audio"]
    shared = find_shared_bats()
    if shared is None:
        print("shared/bats not found: benchmarking on the demo corpus alone")
    else:
        sources.append(shared / "data" / "audio")
    names = []
    for source in sources:
        for path in sorted(source.iterdir()):
            os.symlink(path, audio / path.name)
            names.append(path.name)
    with open(root / "data" / "annotations.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["File Name"])
        writer.writerows([n] for n in names)
    return Dataset.from_root(root)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_naive(mels: list[np.ndarray], steps: int, batch: int, crop: int, seed: int,
                device: torch.device = torch.device("cpu"), model_kwargs: dict | None = None) -> tuple[NaiveVQVAE, float]:
    """The naive recipe (Adam 3e-4, 50 warm-up steps, uniform crops) on ``device``; crops/s over the optimiser
    steps. The model comes back on the CPU."""
    torch.manual_seed(seed)
    model = NaiveVQVAE(**(model_kwargs or {})).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 50))
    rng = np.random.default_rng(seed)
    usable = [m for m in mels if m.shape[1] >= crop]
    synchronise(device)
    started = time.perf_counter()
    for _ in range(steps):
        crops = []
        for index in rng.integers(len(usable), size=batch):
            start = int(rng.integers(usable[index].shape[1] - crop + 1))
            crops.append(usable[index][:, start:start + crop])
        x = torch.from_numpy(np.stack(crops)).to(device)
        out, _, vq_loss = model(x)
        loss = F.mse_loss(out, x) + vq_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    synchronise(device)
    return model.cpu(), steps * batch / (time.perf_counter() - started)


@torch.no_grad()
def evaluate_naive(model: NaiveVQVAE, mels: list[np.ndarray]) -> tuple[float, float, float]:
    codes, error, count = [], 0.0, 0
    for mel in mels:
        frames = mel.shape[1] - mel.shape[1] % 4
        x = torch.from_numpy(mel[:, :frames]).unsqueeze(0)
        out, indices, _ = model(x)
        codes.append(indices.numpy())
        error += float(((out - x) ** 2).sum())
        count += x.numel()
    counts = code_counts(codes, 256)
    return usage(counts), perplexity(counts), error / count


def evaluate_package(tokenizer: VQVAETokenizer, mels: list[np.ndarray]) -> tuple[float, float, float]:
    codes, error, count = [], 0.0, 0
    for mel in mels:
        c = tokenizer.encode(mel)
        codes.append(c)
        error += float(((tokenizer.decode(c, n_frames=mel.shape[1]) - mel) ** 2).sum())
        count += mel.size
    counts = code_counts(codes, tokenizer.config.codes)
    return usage(counts), perplexity(counts), error / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    work = Path(tempfile.mkdtemp(prefix="bench_vqvae_"))
    try:
        dataset = build_corpus(work)
        mel_config = MelConfig()
        mels_by_name = load_mels(dataset, mel_config, options=RunOptions(show_progress=False))
        names = sorted(mels_by_name)
        train_index, holdout_index = split_holdout(names, 0.1, args.seed)
        train_mels = [mels_by_name[names[i]] for i in train_index]
        holdout_mels = [mels_by_name[names[i]] for i in holdout_index]
        print(f"corpus: {len(names)} files ({len(train_mels)} train, {len(holdout_mels)} held back), "
              f"{sum(m.shape[1] for m in mels_by_name.values())} mel frames; {args.steps} steps, batch 8, crop 128")

        naive, naive_rate = train_naive(train_mels, args.steps, 8, 128, args.seed)
        naive_usage, naive_ppl, naive_mse = evaluate_naive(naive, holdout_mels)

        started = time.perf_counter()
        result = train(dataset, work / "model", VQVAEConfig(), TrainConfig(steps=args.steps, seed=args.seed,
                       checkpoint_every=args.steps), mel_config, device="cpu",
                       options=RunOptions(show_progress=False))
        total = time.perf_counter() - started
        tokenizer = VQVAETokenizer.from_pretrained(work / "model")
        ours_usage, ours_ppl, ours_mse = evaluate_package(tokenizer, holdout_mels)

        print(f"{'':12s} {'usage':>8s} {'perplexity':>11s} {'MSE dB^2':>10s} {'crops/s':>9s}")
        print(f"{'naive':12s} {100 * naive_usage:7.1f}% {naive_ppl:11.1f} {naive_mse:10.2f} {naive_rate:9.1f}")
        print(f"{'bat-vqvae':12s} {100 * ours_usage:7.1f}% {ours_ppl:11.1f} {ours_mse:10.2f} {result.samples_per_second:9.1f}")
        print(f"ratios bat-vqvae/naive: usage {ours_usage / max(naive_usage, 1e-9):.1f}x, "
              f"MSE {ours_mse / naive_mse:.3f}x, throughput {result.samples_per_second / naive_rate:.2f}x "
              f"(bat-vqvae wall time incl. k-means init and evaluation: {total:.0f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
