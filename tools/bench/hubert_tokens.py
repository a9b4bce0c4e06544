"""Are bat-hubert's tokens better than an untrained encoder's and than MFCC + k-means? (issue 14)

For each pretraining seed, three token sets, all evaluated with bat-core's evaluation:
- bat-hubert: `bat-hubert pretrain` on all of shared/bats (the user's recordings; no labels used), then
  `bat-w2v-kmeans run --model DIR` on each task's corpus (one encoder per seed serves both tasks: pretraining
  is the cost, and the demo corpus is synthetic: a model learnt on it would not be a bat encoder);
- random weights: the same architecture, fresh initialisation with the same seed, saved as a folder, then
  the same `bat-w2v-kmeans run` (same layer, k, time expansion);
- MFCC + k-means: bat-core's baseline (k-means seeded with the same seed).
Two grouped tasks:
- (a) demo corpus (`bat_core.demo`, 24 synthetic files): call_type grouped by site, through
  `bat_core.evaluate.evaluate_project` (its probe, folds seeded with the seed; its MFCC + k-means row);
- (b) shared/bats: calls vs background windows of the recordings of calls.csv (call_windows.py), grouped
  by recording; each window's tokens become bat-core's token features (Hellinger unigrams) for bat-core's
  probe. bat-w2v-kmeans and the MFCC baseline fit their k-means on all of shared/bats.
Mean and spread (std) over the seeds of each seed's probe accuracy. Also the pretraining throughput:
model audio seconds per second of epoch time (every crop passes once per epoch: 90% trained on, 10%
evaluated as held back).

    python tools/bench/hubert_tokens.py                 # seeds 0 1 2, bat-hubert's default epochs
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from call_windows import link_corpus, read_boxes, span, windows

from bat_core.dataset import Dataset
from bat_core.demo import write_demo_corpus
from bat_core.device import resolve_device
from bat_core.evaluate import evaluate_project
from bat_core.evaluate.baselines import MFCC_CODES, mfcc_kmeans_tokens
from bat_core.evaluate.features import SparseRows, file_features
from bat_core.evaluate.probes import probe
from bat_core.evaluate.representations import discover
from bat_core.mels import MelConfig, load_mels, mel_rows
from bat_core.runner import RunOptions
from bat_core.testing import find_shared_bats
from bat_hubert.defaults import EPOCHS, ITERATIONS, MAX_CROPS
from bat_hubert.model import new_model, save_encoder
from bat_hubert.pretrain import PretrainSettings, pretrain
from bat_w2v_kmeans.cli import main as w2v_main

QUIET = RunOptions(show_progress=False)
LAYER = "2"  # the middle of the 4 default layers: the one iteration 2 clusters
K = 64  # as many codes as the MFCC + k-means baseline


def encoders(dataset: Dataset, work: Path, settings: PretrainSettings) -> tuple[Path, Path, float]:
    """A pretrained and a random-weight folder for ``settings.seed``; the pretraining throughput."""
    trained = pretrain(dataset, work / f"hubert_s{settings.seed}", settings, device=resolve_device("auto"), options=QUIET)
    epoch_seconds = sum(row.seconds for row in trained.rows)
    throughput = trained.training["model_audio_seconds"] * settings.epochs * settings.iterations / epoch_seconds
    accuracy = {int(i): a for i, a in trained.training["held_back_masked_accuracy"].items()}
    chance = {int(i): c for i, c in trained.training["held_back_chance_accuracy"].items()}
    print(f"  seed {settings.seed}: {trained.crops} crops, {epoch_seconds:.0f} s of epochs, {throughput:.1f} "
          f"model-audio-s/s; held-back masked accuracy " + ", ".join(
              f"it{i} {accuracy[i]:.3f} (chance {chance[i]:.3f})" for i in sorted(accuracy)), flush=True)
    random = work / f"random_s{settings.seed}"
    save_encoder(new_model(settings.size, settings.seed).eval(), random)  # no training record: same auto expansion
    return trained.directory, random, throughput


def tokenize(root: Path, derived: Path, model: Path, tag: str, seed: int) -> None:
    code = w2v_main(["run", "--root", str(root), "--derived", str(derived), "--model", str(model), "--layer", LAYER,
                     "--k", str(K), "--tag", tag, "--seed", str(seed), "--num-workers", "0", "-q"])
    if code != 0:
        raise SystemExit(f"bat-w2v-kmeans run --model {model} exited {code}")


def demo_task(work: Path, models: dict[int, tuple[Path, Path]]) -> tuple[dict[str, list[float]], float]:
    root = write_demo_corpus(work / "demo")
    dataset = Dataset.from_root(root)
    scores: dict[str, list[float]] = {"bat-hubert": [], "random weights": [], "MFCC + k-means": []}
    chance = float("nan")
    for seed, (trained, random) in models.items():
        tokenize(root, root / "derived", trained, f"hubert_s{seed}", seed)
        tokenize(root, root / "derived", random, f"random_s{seed}", seed)
        report = evaluate_project(dataset, "call_type", "site", out_dir=work / f"demo_report_s{seed}", examples=0,
                                  seed=seed, options=QUIET)
        rows = {row["name"]: row for row in report.rows}
        scores["bat-hubert"].append(rows[f"w2v_kmeans-hubert_s{seed}"]["probe_accuracy"])
        scores["random weights"].append(rows[f"w2v_kmeans-random_s{seed}"]["probe_accuracy"])
        scores["MFCC + k-means"].append(rows["mfcc_kmeans"]["probe_accuracy"])
        chance = rows["majority"]["chance_accuracy"]
        print(f"  (a) seed {seed}: " + ", ".join(f"{name} {values[-1]:.3f}" for name, values in scores.items()), flush=True)
    return scores, chance


def window_rows(tokens: dict[str, np.ndarray], per_second: dict[str, float], cut, codes: int):
    """bat-core's token features (Hellinger unigrams) of the tokens inside each window."""
    rows = SparseRows(codes)
    for name, start, end, _ in cut:
        rows.append(*file_features(tokens[name][span(start, end, per_second[name], len(tokens[name]))], codes))
    return rows.matrix()


def bats_task(dataset: Dataset, calls_csv: Path, models: dict[int, tuple[Path, Path]]):
    """Probe the call and background windows of shared/bats: (scores, chance, the windows described)."""
    boxes = read_boxes(calls_csv)
    files = sorted(boxes)
    mel_config = MelConfig()
    fps_rows = mel_rows(dataset, mel_config, QUIET)
    mels = load_mels(dataset, mel_config, options=QUIET)
    mel_fps = {name: fps_rows[name]["frames_per_second"] for name in mels}
    cut = windows(boxes, {name: mels[name].shape[1] / mel_fps[name] for name in files})
    labels, groups = [label for *_, label in cut], [name for name, *_ in cut]
    described = (f"{len(files)} recordings, {labels.count('call')} call and {labels.count('background')} background "
                 "windows of 10 ms")
    scores: dict[str, list[float]] = {"bat-hubert": [], "random weights": [], "MFCC + k-means": []}
    chance = float("nan")
    for seed, (trained, random) in models.items():
        for name, model, tag in (("bat-hubert", trained, f"hubert_s{seed}"), ("random weights", random, f"random_s{seed}")):
            tokenize(dataset.paths.root, dataset.paths.derived, model, tag, seed)
            representation = next(r for r in discover(dataset.paths, files) if r.name == f"w2v_kmeans-{tag}")
            tokens = {name: representation.array(name) for name in files}
            vectors = window_rows(tokens, representation.frames_per_second, cut, representation.codebook_size)
            scores[name].append(probe(vectors, labels, groups, seed, standardise=False).probe_accuracy)
        mfcc = mfcc_kmeans_tokens(mels, seed)  # fitted on every recording, as the encoders' k-means
        result = probe(window_rows(mfcc, mel_fps, cut, MFCC_CODES), labels, groups, seed, standardise=False)
        scores["MFCC + k-means"].append(result.probe_accuracy)
        chance = result.chance_accuracy
        print(f"  (b) seed {seed}: " + ", ".join(f"{name} {values[-1]:.3f}" for name, values in scores.items()), flush=True)
    return scores, chance, described


def table(title: str, scores: dict[str, list[float]], chance: float) -> None:
    random_mean, random_std = np.mean(scores["random weights"]), np.std(scores["random weights"])
    mfcc_mean = np.mean(scores["MFCC + k-means"])
    hubert_mean, hubert_std = np.mean(scores["bat-hubert"]), np.std(scores["bat-hubert"])
    spread = max(hubert_std, random_std)
    print(f"\n{title} (chance: largest class {chance:.3f})\n")
    print("| tokens | grouped probe accuracy, mean +- std over seeds | per seed |")
    print("|---|---|---|")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.3f} +- {np.std(values):.3f} | {' '.join(f'{v:.3f}' for v in values)} |")
    print(f"\nabove random by two spreads (the larger std, {spread:.3f}): "
          f"{'met' if hubert_mean - random_mean >= 2 * spread else 'missed'} "
          f"(difference {hubert_mean - random_mean:+.3f}); at or above MFCC + k-means: "
          f"{'met' if hubert_mean >= mfcc_mean else 'missed'} (difference {hubert_mean - mfcc_mean:+.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="pretraining epochs per iteration on shared/bats "
                        f"(default: {EPOCHS}, bat-hubert's default)")
    parser.add_argument("--max-crops", type=int, default=MAX_CROPS, help="pretraining crops kept (default: "
                        f"{MAX_CROPS}, bat-hubert's default, i.e. all of shared/bats; fewer for a quick check)")
    args = parser.parse_args()
    shared = find_shared_bats()
    if shared is None:
        raise SystemExit("shared/bats not found (set BAT_SHARED_BATS): task (b) needs its calls.csv")
    work = Path(tempfile.mkdtemp(prefix="bench_hubert_tokens_"))
    started = time.perf_counter()
    try:
        print(f"pretraining on shared/bats, {args.epochs} epochs x {ITERATIONS} iterations per seed", flush=True)
        dataset = link_corpus(shared, work)
        models, speeds = {}, []
        for seed in args.seeds:
            trained, random, throughput = encoders(dataset, work / "models", PretrainSettings(
                epochs=args.epochs, max_crops=args.max_crops, seed=seed))
            models[seed] = (trained, random)
            speeds.append(throughput)
        print("(a) demo corpus", flush=True)
        demo_scores, demo_chance = demo_task(work, models)
        print("(b) shared/bats windows", flush=True)
        bats_scores, bats_chance, described = bats_task(dataset, shared / "calls.csv", models)
        table("(a) demo corpus: call_type grouped by site", demo_scores, demo_chance)
        table(f"(b) shared/bats: call vs background grouped by recording ({described})", bats_scores, bats_chance)
        print(f"\npretraining throughput on {torch_device()}: {np.mean(speeds):.1f} +- {np.std(speeds):.1f} "
              "model-audio-s/s; "
              f"whole benchmark {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def torch_device() -> str:
    import torch

    device = resolve_device("auto")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} torch threads)"


if __name__ == "__main__":
    main()
