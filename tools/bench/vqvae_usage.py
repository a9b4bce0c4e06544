"""VQ-VAE codebook usage after N crops on shared/bats, and why held-back usage is what it is.

Trains bat-vqvae (defaults unless told: 256 codes, EMA, grid; the device's recipe) on shared/bats
until ``--crops`` crops are seen, then prints:
- held-back usage, perplexity, MSE (as ``bat-vqvae train`` reports them; issue 16's target: >= 90%);
- usage on training files of the same total length as the held-back files, and on all training
  files (a code unused everywhere is dead; one used in training only is rare or file-specific);
- the usage expected if the held-back codes were drawn independently from the training files'
  code distribution: the most a held-back set of this size can show with this code distribution.

    python tools/bench/vqvae_usage.py --crops 8000
    python tools/bench/vqvae_usage.py --crops 8000 --dead-code-share 0.25    # another restart threshold
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from vqvae_quality import link_corpus  # noqa: E402  (a project root over shared/bats, read only)

from bat_core.device import resolve_device  # noqa: E402
from bat_core.mels import MelConfig, load_mels  # noqa: E402
from bat_core.metrics import code_counts, perplexity, usage  # noqa: E402
from bat_core.runner import RunOptions  # noqa: E402
from bat_core.testing import find_shared_bats  # noqa: E402
from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, train  # noqa: E402
from bat_vqvae.device_recipe import recipe_for, steps_for_crops  # noqa: E402
from bat_vqvae.model import codebook_entries  # noqa: E402


def expected_usage(probabilities: np.ndarray, draws: int) -> float:
    """Share of codes seen at least once in ``draws`` independent draws from ``probabilities``."""
    return float((1 - (1 - probabilities) ** draws).sum() / len(probabilities))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=8000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dead-code-share", type=float, default=VQVAEConfig().dead_code_share)
    parser.add_argument("--decay", type=float, default=VQVAEConfig().decay)
    args = parser.parse_args()
    shared = find_shared_bats()
    if shared is None:
        raise SystemExit("shared/bats not found (set BAT_SHARED_BATS)")
    work = Path(tempfile.mkdtemp(prefix="bench_vqvae_usage_"))
    try:
        dataset = link_corpus(shared, work)
        mels = load_mels(dataset, MelConfig(), options=RunOptions(show_progress=False))
        config = VQVAEConfig(dead_code_share=args.dead_code_share, decay=args.decay)
        recipe = recipe_for(resolve_device(args.device).type)
        steps = steps_for_crops(args.crops, recipe.batch_size)
        train_config = replace(TrainConfig(), steps=steps, batch_size=recipe.batch_size, lr=recipe.lr,
                               warmup_steps=recipe.warmup_steps, checkpoint_every=steps)
        result = train(dataset, work / "model", config, train_config, MelConfig(), device=args.device,
                       options=RunOptions(show_progress=False))
        print(result.line())
        tokenizer = VQVAETokenizer.from_pretrained(work / "model")

        def counts(names: list[str]) -> np.ndarray:
            return code_counts([codebook_entries(tokenizer.encode(mels[n]), config) for n in names],
                               config.codebook_entries)

        held, trained = counts(result.holdout_files), counts(result.training_files)
        held_frames = sum(mels[n].shape[1] for n in result.holdout_files)
        subset, frames = [], 0
        for name in np.random.default_rng(0).permutation(result.training_files):
            if frames >= held_frames:
                break
            subset.append(str(name))
            frames += mels[name].shape[1]
        same_size = counts(subset)
        share = trained / trained.sum()
        draws = int(held.sum())
        print(f"held-back files: {len(result.holdout_files)}, {held_frames} mel frames, {draws} codes: usage "
              f"{usage(held):.1%}, perplexity {perplexity(held):.1f}, MSE {result.holdout_mse:.3f}")
        print(f"training files of the same length ({len(subset)} files, {frames} frames): usage {usage(same_size):.1%}, "
              f"perplexity {perplexity(same_size):.1f}")
        print(f"all {len(result.training_files)} training files ({int(trained.sum())} codes): usage {usage(trained):.1%}, "
              f"perplexity {perplexity(trained):.1f}; codes unused everywhere: {int(((held == 0) & (trained == 0)).sum())}, "
              f"used in training only: {int(((held == 0) & (trained > 0)).sum())}")
        print("usage expected from independent draws of the training distribution: "
              + ", ".join(f"{n} codes {expected_usage(share, n):.1%}" for n in (draws, 2 * draws, 4 * draws)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
