"""Do bat-vqvae's codes separate calls from background? A linear probe, side by side with the baselines.

Windows come from shared/bats: a call window is centred on each box of calls.csv (batdetect2's
boxes: never our own detector's); background windows are cut from the same recordings, every
WINDOW_MS, wherever the window keeps >= 5 ms from every box. Each window becomes a vector:
- bat-vqvae (each quantiser x code layout): normalised counts of the codes whose time steps lie in
  the window (a bag of codes; unigrams: with ~100 windows, bigrams would only overfit);
- MFCC + k-means: bag of the k-means tokens (bat-core's baseline) of the frames in the window;
- mean log-mel: the window's average log-mel (bat-core's baseline).
The probe is bat-core's: logistic regression, stratified folds grouped by recording (no recording
on both sides), accuracy mean and spread over folds; the majority class is the floor.
The VQ-VAEs train on every recording of shared/bats (no labels used), ``--crops`` crops each.

    python tools/bench/vqvae_quality.py --crops 2000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from call_windows import WINDOW_MS, bag, link_corpus, read_boxes, span, windows

from bat_core.evaluate.baselines import mfcc_kmeans_tokens
from bat_core.evaluate.probes import probe
from bat_core.mels import MelConfig, load_mels, mel_rows
from bat_core.runner import RunOptions
from bat_core.testing import find_shared_bats
from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, train

VARIANTS = {
    "bat-vqvae ema grid": VQVAEConfig(),
    "bat-vqvae ema time": VQVAEConfig(code_layout="time"),
    "bat-vqvae fsq grid": VQVAEConfig(quantizer="fsq"),
    "bat-vqvae fsq time": VQVAEConfig(quantizer="fsq", code_layout="time"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=2000, help="training crops per VQ-VAE (default: 2000)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names to train")
    args = parser.parse_args()
    shared = find_shared_bats()
    if shared is None:
        raise SystemExit("shared/bats not found (set BAT_SHARED_BATS): this benchmark needs its calls.csv")
    work = Path(tempfile.mkdtemp(prefix="bench_vqvae_quality_"))
    try:
        dataset = link_corpus(shared, work)
        mel_config = MelConfig()
        boxes = read_boxes(shared / "calls.csv")
        rows = mel_rows(dataset, mel_config, RunOptions(show_progress=False))
        probe_files = sorted(boxes)
        mels = load_mels(dataset, mel_config, options=RunOptions(show_progress=False))
        fps = {name: rows[name]["frames_per_second"] for name in probe_files}
        durations = {name: mels[name].shape[1] / fps[name] for name in probe_files}
        cut = windows(boxes, durations)
        labels = [label for *_, label in cut]
        groups = [name for name, *_ in cut]
        print(f"{len(probe_files)} recordings with boxes, {labels.count('call')} call and "
              f"{labels.count('background')} background windows of {WINDOW_MS:g} ms; {len(mels)} recordings in all")

        features: dict[str, np.ndarray] = {}
        mean_mel = [mels[n][:, span(s, e, fps[n], mels[n].shape[1])].mean(axis=1) for n, s, e, _ in cut]
        features["mean log-mel"] = np.stack(mean_mel)
        tokens = mfcc_kmeans_tokens(mels)
        size = int(max(t.max() for t in tokens.values())) + 1
        features["MFCC + k-means"] = np.stack([bag(tokens[n][span(s, e, fps[n], len(tokens[n]))], size)
                                               for n, s, e, _ in cut])
        for name in args.variants.split(","):
            config = VARIANTS.get(name)
            if config is None:
                raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
            steps = max(1, args.crops // TrainConfig().batch_size)
            model_dir = work / name.replace(" ", "_")
            result = train(dataset, model_dir, config, TrainConfig(steps=steps, checkpoint_every=steps), mel_config,
                           device=args.device, options=RunOptions(show_progress=False), overwrite=True)
            print(f"{name}: {result.line()}")
            tokenizer = VQVAETokenizer.from_pretrained(model_dir)
            codes = {n: tokenizer.encode(mels[n]) for n in probe_files}
            stride = config.stride
            features[name] = np.stack([bag(codes[n][span(s, e, fps[n] / stride, len(codes[n]))], config.codes)
                                       for n, s, e, _ in cut])

        floor = probe(features["mean log-mel"], labels, groups, predict_majority=True)
        print(f"\n| representation | probe accuracy (mean +- std over {floor.folds} folds) | macro F1 |")
        print("|---|---|---|")
        print(f"| majority class | {floor.probe_accuracy:.3f} +- {floor.probe_accuracy_std:.3f} | "
              f"{floor.probe_macro_f1:.3f} |")
        for name, vectors in features.items():
            scored = probe(vectors, labels, groups)
            print(f"| {name} | {scored.probe_accuracy:.3f} +- {scored.probe_accuracy_std:.3f} | "
                  f"{scored.probe_macro_f1:.3f} +- {scored.probe_macro_f1_std:.3f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
