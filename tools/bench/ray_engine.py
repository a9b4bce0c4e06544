"""`--engine ray` against the local engine, side by side in one run (issue 15).

overhead (default; any machine): wav2vec2 + k-means tokens with a tiny random-weight encoder over >= 10 min
    of recordings (shared/bats cycled, else the demo corpus), the codebook fitted once beforehand; the local
    engine (default decoding workers) then a local Ray (default actors), each encoding the same files into its
    own --derived. Ray's start-up (ray.init) is timed apart. Prints the ratio Ray / local (target <= 1.3x) and,
    report only, Ray with 1 actor vs 2.
scaling (a many-core machine): mels (decode, time expansion, STFT: no model, the CPU side Ray scales) on Ray
    with 1 CPU and with N CPUs (`--cpus-list 1,8`), each in its own process with its own local Ray; each runs
    --files and 3x --files, so the seconds every run pays (actors' start, Ray Data's plan) and the files/s past
    them are told apart; the ratio of those rates is the scaling (target >= 5x from 1 to 8 CPUs).
gpu (a CUDA machine; `--device cpu` is a smoke test): a base-size wav2vec2 (random weights) tokenizing the
    corpus on one GPU actor fed by Ray tasks on the machine's cores, at two sizes as above, against the bare
    bf16 forward over the same windows in the local engine's batches (tools/bench/w2v_kmeans.py's bound) and
    in the batches one actor call makes (it flushes every --files-per-call files, taken in the engine's
    call_order); target: Ray's audio-s/s past its fixed cost >= 50% of the bare forward's. Report only: 4x the
    files per call, 4 actors sharing the GPU.
batches (any machine, no model run): how many forwards the local engine and Ray's actor calls make over
    3x --files recordings with a GPU's batch limits, in the order listed and in call_order. On a GPU a
    forward of this model costs ~15 ms whatever its size, so the count is what bounds a Ray run there.

    python tools/bench/ray_engine.py --minutes 10
    python tools/bench/ray_engine.py --mode scaling --cpus-list 1,8
    python tools/bench/ray_engine.py --mode gpu --files 300
    python tools/bench/ray_engine.py --mode batches --files 400
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from w2v_kmeans import bare_forward, build_corpus, met, runner_batches  # noqa: E402


def audio_minutes(root: Path) -> float:
    import soundfile

    from bat_core.dataset import Dataset

    return sum(soundfile.info(str(item.path)).duration for item in Dataset.from_root(root)) / 60


def corpus_of(tmp: Path, minutes: float) -> Path:
    files = 40
    while True:
        root = build_corpus(tmp / f"corpus-{files}" / "corpus", files)
        if audio_minutes(root) >= minutes:
            return root
        files *= 2


def tokenizer_for(model_dir: Path, root: Path, device: str):
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer

    tokenizer = W2VKMeansTokenizer(SpeechEncoder.from_pretrained(model_dir, device=device))
    tokenizer.fit(Dataset.from_root(root, root.parent / "fit").select({}, 10), k=32, max_fit_frames=5000,
                  options=RunOptions(workers=0, show_progress=False))
    return tokenizer


def encode_seconds(root: Path, derived: Path, tokenizer, options) -> tuple[float, int]:
    from bat_core.dataset import Dataset
    from bat_w2v_kmeans import encode_dataset

    started = time.perf_counter()
    summary = encode_dataset(Dataset.from_root(root, derived), tokenizer, options=options)
    return time.perf_counter() - started, summary.done


def overhead(args, tmp: Path) -> None:
    import ray

    from bat_core.cli_common import default_workers
    from bat_core.ray_engine import RayOptions
    from bat_core.runner import RunOptions
    from bat_core.testing import make_tiny_speech_encoder

    root = corpus_of(tmp, args.minutes)
    minutes = audio_minutes(root)
    tokenizer = tokenizer_for(make_tiny_speech_encoder(tmp / "tiny"), root, "cpu")
    local = RunOptions(workers=default_workers(), show_progress=False)
    local_s, done = encode_seconds(root, tmp / "local", tokenizer, local)
    started = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - started
    cpus = int(ray.cluster_resources().get("CPU", 1))
    ray_s, ray_done = encode_seconds(root, tmp / "ray", tokenizer, replace(local, ray=RayOptions()))
    one_s, _ = encode_seconds(root, tmp / "ray-1", tokenizer, replace(local, ray=RayOptions(workers=1)))
    two_s, _ = encode_seconds(root, tmp / "ray-2", tokenizer, replace(local, ray=RayOptions(workers=2)))
    ratio = ray_s / local_s
    print(f"{done} files, {minutes:.1f} min of recordings, tiny wav2vec2 + k-means (k=32), {os.cpu_count()} cores, "
          f"Ray {ray.__version__} with {cpus} CPUs")
    print(f"local engine ({local.workers} decoding workers): {local_s:.1f} s; Ray (default actors): {ray_s:.1f} s "
          f"({ray_done} files), start-up apart: {startup:.1f} s")
    print(f"target: Ray / local <= 1.3x: {ratio:.2f}x: {met(ratio <= 1.3)}")
    print(f"scaling (report only): Ray 1 actor {one_s:.1f} s, 2 actors {two_s:.1f} s: {one_s / two_s:.2f}x")


def fixed_and_rate(amounts: tuple[float, float], seconds: tuple[float, float]) -> tuple[float, float]:
    """Two runs of one configuration, small and large: (seconds every run pays whatever its size, amount per
    second past them). A run starts its actors (a process each, importing torch, loading the model) and Ray
    Data's plan; a corpus of 10^5 recordings pays that once, so the rate is what scales and what a GPU sees."""
    rate = (amounts[1] - amounts[0]) / (seconds[1] - seconds[0])
    return seconds[0] - amounts[0] / rate, rate


SCALING_SIDE = """
import json, sys, time
import ray
from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, compute_mels
from bat_core.ray_engine import RayOptions
from bat_core.runner import RunOptions
root, out, cpus, sizes = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(v) for v in sys.argv[4].split(",")]
ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
options = RunOptions(show_progress=False, ray=RayOptions(workers=cpus))
compute_mels(Dataset.from_root(root, out + "-warm").select({}, 2 * cpus), MelConfig(), options=options)  # Ray Data's first plan
seconds, done = [], []
for files in sizes:
    started = time.perf_counter()
    summary = compute_mels(Dataset.from_root(root, f"{out}-{files}").select({}, files), MelConfig(), options=options)
    seconds.append(time.perf_counter() - started)
    done.append(summary.done)
print(json.dumps({"seconds": seconds, "done": done}))
"""


def scaling(args, tmp: Path) -> None:
    sizes = (args.files, 3 * args.files)
    root = build_corpus(tmp / "corpus", sizes[-1])
    rates = {}
    print(f"bat-core mels --engine ray, {sizes[0]} and {sizes[1]} files per CPU count, each count in its own process "
          f"and local Ray (after one warm-up run); {os.cpu_count()} cores")
    for cpus in args.cpus_list:
        out = subprocess.run([sys.executable, "-c", SCALING_SIDE, str(root), str(tmp / f"mels-{cpus}"), str(cpus),
                              ",".join(map(str, sizes))], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        fixed, rates[cpus] = fixed_and_rate(tuple(result["done"]), tuple(result["seconds"]))
        whole = [f"{n} in {t:.1f} s" for n, t in zip(result["done"], result["seconds"])]
        print(f"{cpus} CPUs: {', '.join(whole)}: {rates[cpus]:.1f} files/s past a fixed {fixed:.1f} s per run "
              f"(whole large run: {result['done'][1] / result['seconds'][1]:.1f} files/s)")
    low, high = min(rates), max(rates)
    ratio = rates[high] / rates[low]
    verdict = met(ratio >= 5) if (low, high) == (1, 8) else "report only (the target is 1 -> 8)"
    print(f"scaling {low} -> {high} CPUs (files/s past the fixed cost): {ratio:.2f}x; target 1 -> 8 >= 5x: {verdict}")


def gpu(args, tmp: Path) -> None:
    import ray
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from bat_core.ray_engine import RayOptions, call_order
    from bat_core.runner import RunOptions

    sizes = (args.files, 3 * args.files)
    roots = [build_corpus(tmp / f"corpus-{files}" / "corpus", files) for files in sizes]
    if args.device == "cpu":  # a smoke test of this mode: a tiny model
        from bat_core.testing import make_tiny_speech_encoder

        model_dir = make_tiny_speech_encoder(tmp / "tiny")
    else:
        model_dir = tmp / "wav2vec2-base-random"
        torch.manual_seed(0)
        Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(model_dir)
        Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(model_dir)
    bare = bare_forward(roots[1], model_dir, 15.0, None, args.device)
    bare_rate = bare["audio_s"] / bare["bare_forward_s"]
    per_call = bare_forward(roots[1], model_dir, 15.0, None, args.device, flush_every=args.files_per_call,
                            order=call_order)
    audio = (bare["audio_s"] * audio_minutes(roots[0]) / audio_minutes(roots[1]), bare["audio_s"])
    tokenizer = tokenizer_for(model_dir, roots[1], args.device)
    gpus = 1.0
    # cpu: Ray is told of one GPU that is not there, so the pipeline has the GPU's
    # shape (decoding in CPU tasks, one model actor) while the model runs on the CPU
    ray.init(include_dashboard=False, log_to_driver=False, **({"num_gpus": 1} if args.device == "cpu" else {}))
    options = RunOptions(show_progress=False, ray=RayOptions(workers=1, gpus_per_worker=gpus,
                                                             files_per_call=args.files_per_call))
    encode_seconds(build_corpus(tmp / "corpus-warm" / "corpus", 2), tmp / "ray-warm", tokenizer, options)  # Ray Data's first plan
    seconds = tuple(encode_seconds(root, tmp / f"ray-{n}", tokenizer, options)[0] for n, root in zip(sizes, roots))
    fixed, rate = fixed_and_rate(audio, seconds)
    bigger_s, _ = encode_seconds(roots[1], tmp / "ray-bigger-calls", tokenizer,
                                 replace(options, ray=replace(options.ray, files_per_call=4 * args.files_per_call)))
    shared_s = float("nan")  # on a small CPU machine, 4 actors of 1 CPU each would leave no CPU to decode
    if args.device != "cpu":
        shared_s, _ = encode_seconds(roots[1], tmp / "ray-shared", tokenizer,
                                     replace(options, ray=replace(options.ray, workers=4, gpus_per_worker=gpus / 4)))
    card = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (Ray told of 1 GPU: a smoke test)"
    print(f"{sizes[0]} and {sizes[1]} files ({audio[0]:.0f} and {audio[1]:.0f} s of 16 kHz model audio), {card}, "
          f"{os.cpu_count()} cores, Ray {ray.__version__}; {'tiny' if args.device == 'cpu' else 'base'} wav2vec2, "
          f"random weights, {bare['precision']}")
    print(f"bare forward over the local engine's batches: {bare_rate:.0f} audio-s/s ({bare['bare_forward_s']:.1f} s, "
          f"{bare['batches']} batches); over the batches of {args.files_per_call}-file actor calls: "
          f"{bare['audio_s'] / per_call['bare_forward_s']:.0f} audio-s/s ({per_call['batches']} batches)")
    print(f"Ray, one GPU actor, {args.files_per_call} files per call: {seconds[0]:.1f} s and {seconds[1]:.1f} s: "
          f"{rate:.0f} audio-s/s past a fixed {fixed:.1f} s per run (actor start, model load, Ray Data's plan); "
          f"whole large run {audio[1] / seconds[1]:.0f} audio-s/s")
    print(f"target: Ray >= 50% of the bare forward (rate past the fixed cost): {rate / bare_rate:.0%}: "
          f"{met(rate >= 0.5 * bare_rate)}")
    print(f"report only, large run: {4 * args.files_per_call} files per call {audio[1] / bigger_s:.0f} audio-s/s "
          f"({bigger_s:.1f} s); 4 actors sharing the GPU (--gpus-per-worker 0.25) {audio[1] / shared_s:.0f} audio-s/s "
          f"({shared_s:.1f} s)")


def batches(args, tmp: Path) -> None:
    from bat_core.ray_engine import call_order
    from bat_core.testing import make_tiny_speech_encoder
    from bat_w2v_kmeans import SpeechEncoder
    from bat_w2v_kmeans.encoder import GPU_BATCH_PIECES, GPU_BATCH_SECONDS

    root = build_corpus(tmp / "corpus", 3 * args.files)
    # base's frame (320 samples) and rate, so base's windows: only their lengths matter here
    model_dir = make_tiny_speech_encoder(tmp / "tiny", attention_mask=False)
    encoder = SpeechEncoder.from_pretrained(model_dir, device="cpu", batch_size=GPU_BATCH_PIECES,
                                            max_batch_seconds=GPU_BATCH_SECONDS)
    local = len(runner_batches(root, encoder, 15.0))
    print(f"{3 * args.files} files, base wav2vec2's windows at x15, a GPU's batch limits ({GPU_BATCH_PIECES} windows, "
          f"{GPU_BATCH_SECONDS:.0f} s): local engine {local} batches")
    for files in sorted({args.files_per_call, 4 * args.files_per_call}):
        listed = len(runner_batches(root, encoder, 15.0, flush_every=files))
        ordered = len(runner_batches(root, encoder, 15.0, flush_every=files, order=call_order))
        print(f"--engine ray, {files} files per call: {listed} batches in the order listed, {ordered} in call_order "
              f"(largest first): {ordered / local:.2f}x the local engine's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("overhead", "scaling", "gpu", "batches"), default="overhead")
    parser.add_argument("--minutes", type=float, default=10.0, help="overhead: at least this much audio")
    parser.add_argument("--files", type=int, default=200,
                        help="scaling, gpu: files of the small run; the large run has 3x (shared/bats or the demo, cycled)")
    parser.add_argument("--files-per-call", type=int, default=8, help="gpu: files an actor takes per call (default: 8)")
    parser.add_argument("--cpus-list", type=lambda text: [int(v) for v in text.split(",")], default=[1, 8])
    parser.add_argument("--device", default="cuda", help="gpu: cuda (default), or cpu for a smoke test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        {"overhead": overhead, "scaling": scaling, "gpu": gpu, "batches": batches}[args.mode](args, Path(tmp))


if __name__ == "__main__":
    main()
