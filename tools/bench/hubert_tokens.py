"""Are bat-hubert's tokens better than an untrained encoder's and than MFCC + k-means? (issue 14)

For each pretraining seed, three token sets, all evaluated with bat-core's evaluation:
- bat-hubert: `bat-hubert pretrain` (no labels used), then `bat-w2v-kmeans run --model DIR --layer L` on each
  task's corpus, a row per layer of `--layers`. Task (b)'s encoder is pretrained on shared/bats, its own
  corpus; task (a)'s on what `--pretrain-on` names, a row each: `task`, the demo's own 24 unlabelled files (the
  product's use: a user pretrains on their own recordings, then tokenizes them), and/or `bats`, the shared/bats
  encoder (does an encoder learnt on real bats transfer to the synthetic calls?); default both. The issue's
  goal reads the `task` row: a demo is synthetic, so what (a) can show is the recipe learning from a corpus;
- random weights: the same architecture, fresh initialisation with the same seed, saved as a folder, then
  the same `bat-w2v-kmeans run` (same layer, k, time expansion);
- MFCC + k-means: bat-core's baseline (k-means seeded with the same seed).
Two grouped tasks:
- (a) demo corpus (`bat_core.demo`, 24 synthetic files): call_type grouped by site, through
  `bat_core.evaluate.evaluate_project` (its probe, folds seeded with the seed; its MFCC + k-means row);
- (b) shared/bats: calls vs background windows of the recordings of calls.csv (call_windows.py), grouped
  by recording; `--boxes TABLE` takes the boxes from a table in calls.csv's layout instead, e.g. batdetect2's
  over every recording (`bat-core segment --detector batdetect2`), with `--background-per-call 1` for
  balanced classes; each window's tokens become bat-core's token features (Hellinger unigrams) for bat-core's
  probe. bat-w2v-kmeans and the MFCC baseline fit their k-means on all of shared/bats.
Mean and spread (std) over the seeds of each seed's probe accuracy. Also the pretraining throughput:
model audio seconds per second of epoch time (every crop passes once per epoch: 90% trained on, 10%
evaluated as held back).

    python tools/bench/hubert_tokens.py                 # seeds 0 1 2, layer 0, shared/bats at bat-hubert's defaults
    python tools/bench/hubert_tokens.py --seeds 3 4 5 --layers 1 2 3       # more seeds, more layers
    python tools/bench/hubert_tokens.py --tasks a --pretrain-on task --demo-epochs 3 --min-steps 0  # 3 epochs
    python tools/bench/hubert_tokens.py --tasks b --boxes D/segments/batdetect2-HASH.parquet --background-per-call 1
    python tools/bench/hubert_tokens.py --segments ...   # encoders pretrained on their corpus's detected calls
    python tools/bench/hubert_tokens.py --time-expansion auto ...   # x15: pretraining and every tokenization
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import defaultdict
from itertools import product
from pathlib import Path

import numpy as np
from call_windows import link_corpus, read_boxes, span, windows

from bat_core.calls import DEFAULT_CONTEXT_S, CallSelection, load_selection, resolve_segments
from bat_core.cli import main as core_main
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
from bat_core.time_expansion import TimeExpansion
from bat_hubert.defaults import (
    CLUSTERS,
    CROP_SECONDS,
    EPOCHS,
    FRONTEND_STEPS,
    ITERATIONS,
    LEARNING_RATE,
    MASK_LENGTH,
    MASK_PROB,
    MAX_CROPS,
    MIN_STEPS,
    TIME_EXPANSION,
)
from bat_hubert.model import new_model, save_encoder
from bat_hubert.pretrain import PretrainSettings, pretrain
from bat_w2v_kmeans.cli import main as w2v_main

QUIET = RunOptions(show_progress=False)
LAYERS = [0]  # the layer the README tokenizes with: its units tell calls from background (layer 2: --layers 0 2)
DEMO_EPOCHS = 10  # what the README's main command and tools/demo.sh pretrain the demo encoder with
K = 64  # as many codes as the MFCC + k-means baseline


def pretrained(dataset: Dataset, work: Path, settings: PretrainSettings, expansion: TimeExpansion,
               calls: CallSelection | None = None) -> tuple[Path, Path, float]:
    """A pretrained (on ``dataset``, or its ``calls``) and a random-weight folder for ``settings.seed``; the
    pretraining throughput."""
    trained = pretrain(dataset, work / f"hubert_s{settings.seed}", settings, expansion, device=resolve_device("auto"),
                       options=QUIET, calls=calls)
    epoch_seconds = sum(row.seconds for row in trained.rows)
    throughput = (trained.training["model_audio_seconds"] * trained.training["epochs_per_iteration"] * settings.iterations
                  / epoch_seconds)
    accuracy = {int(i): a for i, a in trained.training["held_back_masked_accuracy"].items()}
    chance = {int(i): c for i, c in trained.training["held_back_chance_accuracy"].items()}
    print(f"  seed {settings.seed} on {dataset.paths.root.name}: {trained.crops} crops, {epoch_seconds:.0f} s of epochs, "
          f"{throughput:.1f} model-audio-s/s; held-back masked accuracy " + ", ".join(
              f"it{i} {accuracy[i]:.3f} (chance {chance[i]:.3f})" for i in sorted(accuracy)), flush=True)
    random = work / f"random_s{settings.seed}"
    save_encoder(new_model(settings.size, settings.seed).eval(), random)  # no training record: tokenize() names it
    return trained.directory, random, throughput


def detected_calls(dataset: Dataset) -> CallSelection:
    """The calls bat-core's detector finds in ``dataset`` (what `--segments detected` reads), 5 ms of context each side."""
    if core_main(["segment", "--root", str(dataset.paths.root), "-q"]) != 0:
        raise SystemExit(f"bat-core segment failed on {dataset.paths.root}")
    return load_selection(resolve_segments("detected", dataset.paths), DEFAULT_CONTEXT_S)


def tokenize(root: Path, derived: Path, model: Path, layer: int, tag: str, seed: int, expansion: TimeExpansion) -> None:
    code = w2v_main(["run", "--root", str(root), "--derived", str(derived), "--model", str(model), "--layer", str(layer),
                     "--k", str(K), "--tag", tag, "--seed", str(seed), "--time-expansion", expansion.describe(),
                     "--num-workers", "0", "-q"])
    if code != 0:
        raise SystemExit(f"bat-w2v-kmeans run --model {model} exited {code}")


Encoders = dict[str, dict[int, tuple[Path, Path]]]  # pretraining corpus -> seed -> (pretrained, random) folders
SOURCES = {"bats": "shared/bats", "demo": "the demo"}


def encoder_rows(encoders: Encoders, seed: int, layers: list[int]) -> list[tuple[str, str, Path, int]]:
    """(row name, tag, model folder, layer) of one seed: each pretrained encoder and the random weights (the same
    architecture and seed, so one folder stands for all) at each layer."""
    rows = []
    for layer in layers:
        for source, models in encoders.items():
            rows.append((f"bat-hubert (on {SOURCES[source]}), layer {layer}", f"hubert_{source}_s{seed}_l{layer}",
                         models[seed][0], layer))
        rows.append((f"random weights, layer {layer}", f"random_s{seed}_l{layer}", next(iter(encoders.values()))[seed][1],
                     layer))
    return rows


def demo_task(root: Path, work: Path, encoders: Encoders, seeds: list[int], layers: list[int],
              expansion: TimeExpansion) -> tuple[dict[str, list[float]], float]:
    dataset = Dataset.from_root(root)
    scores: dict[str, list[float]] = defaultdict(list)
    chance = float("nan")
    for seed in seeds:
        rows = encoder_rows(encoders, seed, layers)
        for _, tag, model, layer in rows:
            tokenize(root, root / "derived", model, layer, tag, seed, expansion)
        report = evaluate_project(dataset, "call_type", "site", out_dir=work / f"demo_report_s{seed}", examples=0,
                                  seed=seed, options=QUIET)
        evaluated = {row["name"]: row for row in report.rows}
        for name, tag, _, _ in rows:
            scores[name].append(evaluated[f"w2v_kmeans-{tag}"]["probe_accuracy"])
        scores["MFCC + k-means"].append(evaluated["mfcc_kmeans"]["probe_accuracy"])
        chance = evaluated["majority"]["chance_accuracy"]
        print(f"  (a) seed {seed}: " + ", ".join(f"{name} {values[-1]:.3f}" for name, values in scores.items()), flush=True)
    return scores, chance


def window_rows(tokens: dict[str, np.ndarray], per_second: dict[str, float], cut, codes: int):
    """bat-core's token features (Hellinger unigrams) of the tokens inside each window."""
    rows = SparseRows(codes)
    for name, start, end, _ in cut:
        rows.append(*file_features(tokens[name][span(start, end, per_second[name], len(tokens[name]))], codes))
    return rows.matrix()


def bats_task(dataset: Dataset, calls: Path, encoders: Encoders, seeds: list[int], layers: list[int],
              expansion: TimeExpansion, background_per_call: int | None = None):
    """Probe the call and background windows of shared/bats: (scores, chance, the windows described)."""
    boxes = read_boxes(calls)
    files = sorted(boxes)
    mel_config = MelConfig()
    fps_rows = mel_rows(dataset, mel_config, QUIET)
    mels = load_mels(dataset, mel_config, options=QUIET)
    mel_fps = {name: fps_rows[name]["frames_per_second"] for name in mels}
    cut = windows(boxes, {name: mels[name].shape[1] / mel_fps[name] for name in files}, background_per_call)
    labels, groups = [label for *_, label in cut], [name for name, *_ in cut]
    described = (f"boxes of {calls.name}, {len(files)} recordings, {labels.count('call')} call and "
                 f"{labels.count('background')} background windows of 10 ms")
    scores: dict[str, list[float]] = defaultdict(list)
    chance = float("nan")
    for seed in seeds:
        for name, tag, model, layer in encoder_rows(encoders, seed, layers):
            tokenize(dataset.paths.root, dataset.paths.derived, model, layer, tag, seed, expansion)
            representation = next(r for r in discover(dataset.paths, files) if r.name == f"w2v_kmeans-{tag}")
            tokens = {file: representation.array(file) for file in files}
            vectors = window_rows(tokens, representation.frames_per_second, cut, representation.codebook_size)
            scores[name].append(probe(vectors, labels, groups, seed, standardise=False).probe_accuracy)
        mfcc = mfcc_kmeans_tokens(mels, seed)  # fitted on every recording, as the encoders' k-means
        result = probe(window_rows(mfcc, mel_fps, cut, MFCC_CODES), labels, groups, seed, standardise=False)
        scores["MFCC + k-means"].append(result.probe_accuracy)
        chance = result.chance_accuracy
        print(f"  (b) seed {seed}: " + ", ".join(f"{name} {values[-1]:.3f}" for name, values in scores.items()), flush=True)
    return scores, chance, described


def table(title: str, scores: dict[str, list[float]], chance: float) -> None:
    print(f"\n{title} (chance: largest class {chance:.3f})\n")
    print("| tokens | grouped probe accuracy, mean +- std over seeds | per seed |")
    print("|---|---|---|")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.3f} +- {np.std(values):.3f} | {' '.join(f'{v:.3f}' for v in values)} |")
    mfcc_mean = np.mean(scores["MFCC + k-means"])
    for name, hubert in scores.items():
        if not name.startswith("bat-hubert"):
            continue
        random = scores[f"random weights, {name.rsplit(', ', 1)[1]}"]
        spread = max(np.std(hubert), np.std(random))
        above = np.mean(hubert) - np.mean(random)
        print(f"{name}: above random by two spreads (the larger std, {spread:.3f}): "
              f"{'met' if above >= 2 * spread else 'missed'} (difference {above:+.3f}); at or above MFCC + k-means: "
              f"{'met' if np.mean(hubert) >= mfcc_mean else 'missed'} (difference {np.mean(hubert) - mfcc_mean:+.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--layers", type=int, nargs="+", default=LAYERS, help="layers bat-w2v-kmeans tokenizes, "
                        "each a row of bat-hubert and of random weights (default: 2)")
    parser.add_argument("--pretrain-on", choices=("bats", "task"), nargs="+", default=["task", "bats"],
                        help="what task (a)'s encoders are pretrained on, a row each: task = the demo corpus itself "
                        "(the product's use; the goal's row), bats = shared/bats (task (b)'s encoder: does it transfer?) "
                        "(default: both)")
    parser.add_argument("--tasks", choices=("a", "b"), nargs="+", default=["a", "b"], help="the tasks run (default: "
                        "both; shared/bats is pretrained on only when a row needs it)")
    parser.add_argument("--boxes", type=Path, default=None, help="(b): boxes from this table in calls.csv's layout "
                        "(csv, or bat-core segment's parquet) instead of shared/bats/calls.csv (3 recordings)")
    parser.add_argument("--segments", action="store_true", help="pretrain each encoder on its corpus's calls (with 5 ms "
                        "of context each side), as `bat-hubert pretrain --segments detected` after `bat-core segment` "
                        "(bat-core's detector, not the boxes (b) evaluates), instead of on whole recordings")
    parser.add_argument("--background-per-call", type=int, default=None, help="(b): at most this many background "
                        "windows per call window in each recording, evenly spaced (default: every one)")
    training = parser.add_argument_group("pretraining (bat-hubert's defaults unless given)")
    training.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs per iteration (default: {EPOCHS})")
    training.add_argument("--demo-epochs", type=int, default=DEMO_EPOCHS, help="epochs per iteration on the demo "
                          f"corpus (--pretrain-on task; default: {DEMO_EPOCHS}, the README's and tools/demo.sh's: at 3 "
                          "its 498 crops leave the held-back masked accuracy at chance, unless --min-steps raises it)")
    training.add_argument("--min-steps", type=int, default=MIN_STEPS, help="optimiser steps per iteration at least, "
                          f"epochs raised to reach them (default: {MIN_STEPS}, bat-hubert's; 0: the epochs as given)")
    training.add_argument("--max-crops", type=int, default=MAX_CROPS, help=f"crops kept (default: {MAX_CROPS}, i.e. "
                          "all of shared/bats; fewer for a quick check)")
    training.add_argument("--target-layer", type=int, default=None, help="layer iteration 2 clusters (default: the middle)")
    training.add_argument("--clusters", type=int, nargs="+", default=list(CLUSTERS), help="units per iteration "
                          f"(default: {' '.join(map(str, CLUSTERS))})")
    training.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help=f"(default: {LEARNING_RATE:g})")
    training.add_argument("--mask-prob", type=float, default=MASK_PROB, help=f"(default: {MASK_PROB:g})")
    training.add_argument("--frontend-steps", type=int, default=FRONTEND_STEPS, help="iteration 0's steps (0: none; "
                          f"default: {FRONTEND_STEPS})")
    training.add_argument("--mask-length", type=int, default=MASK_LENGTH, help=f"(default: {MASK_LENGTH})")
    training.add_argument("--crop-seconds", type=float, default=CROP_SECONDS, help="crop length in seconds of model "
                          f"audio (default: {CROP_SECONDS:g})")
    training.add_argument("--time-expansion", type=TimeExpansion.parse, default=TimeExpansion.parse(TIME_EXPANSION),
                          metavar="auto|FACTOR", help="for pretraining and for every tokenization, random weights "
                          f"included; the MFCC baseline keeps bat-core's own (default: bat-hubert's, {TIME_EXPANSION})")
    args = parser.parse_args()
    shared = find_shared_bats()
    if shared is None:
        raise SystemExit("shared/bats not found (set BAT_SHARED_BATS): both tasks need it (pretraining, calls.csv)")
    work = Path(tempfile.mkdtemp(prefix="bench_hubert_tokens_"))
    started = time.perf_counter()
    try:
        demo_sources = [source for option, source in (("bats", "bats"), ("task", "demo")) if option in args.pretrain_on]
        wanted = {"bats"} if "b" in args.tasks else set()
        wanted |= set(demo_sources) if "a" in args.tasks else set()
        epochs = {"bats": args.epochs, "demo": args.demo_epochs}
        print("pretraining on " + " and ".join(f"{SOURCES[name]} ({epochs[name]} epochs x {ITERATIONS} iterations)"
                                               for name in sorted(wanted))
              + (", on their detected calls only" if args.segments else "")
              + f", at least {args.min_steps} steps per iteration, time expansion {args.time_expansion.describe()}",
              flush=True)
        dataset = link_corpus(shared, work)
        demo_root = write_demo_corpus(work / "demo")
        corpora = {name: corpus for name, corpus in (("bats", dataset), ("demo", Dataset.from_root(demo_root)))
                   if name in wanted}
        encoders: Encoders = {name: {} for name in corpora}
        calls = {name: detected_calls(corpus) if args.segments else None for name, corpus in corpora.items()}
        speeds = []
        for (name, corpus), seed in product(corpora.items(), args.seeds):
            settings = PretrainSettings(epochs=epochs[name], min_steps=args.min_steps, max_crops=args.max_crops, seed=seed,
                                        layer=args.target_layer, clusters=tuple(args.clusters),
                                        learning_rate=args.learning_rate, mask_prob=args.mask_prob,
                                        mask_length=args.mask_length, frontend_steps=args.frontend_steps,
                                        crop_seconds=args.crop_seconds)
            trained, random, throughput = pretrained(corpus, work / "models" / name, settings, args.time_expansion,
                                                     calls[name])
            encoders[name][seed] = (trained, random)
            if name == "bats":
                speeds.append(throughput)
        if "a" in args.tasks:
            print("(a) demo corpus", flush=True)
            demo_scores, demo_chance = demo_task(demo_root, work, {name: encoders[name] for name in demo_sources},
                                                 args.seeds, args.layers, args.time_expansion)
            table("(a) demo corpus: call_type grouped by site", demo_scores, demo_chance)
        if "b" in args.tasks:
            print("(b) shared/bats windows", flush=True)
            bats_scores, bats_chance, described = bats_task(dataset, args.boxes or shared / "calls.csv",
                                                            {"bats": encoders["bats"]}, args.seeds, args.layers,
                                                            args.time_expansion, args.background_per_call)
            table(f"(b) shared/bats: call vs background grouped by recording ({described})", bats_scores, bats_chance)
        if speeds:
            print(f"\npretraining throughput on shared/bats, {torch_device()}: {np.mean(speeds):.1f} +- "
                  f"{np.std(speeds):.1f} model-audio-s/s")
        print(f"whole benchmark {time.perf_counter() - started:.0f} s")
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
