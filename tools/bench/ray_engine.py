"""`--engine ray` against the local engine, side by side in one run (issue 15).

overhead (default; any machine): wav2vec2 + k-means tokens with a tiny random-weight encoder over >= 10 min
    of recordings (shared/bats cycled, else the demo corpus), the codebook fitted once beforehand; the local
    engine (default decoding workers) then a local Ray (default actors), each encoding the same files into its
    own --derived. Ray's start-up (ray.init) is timed apart. Prints the ratio Ray / local (target <= 1.3x) and,
    report only, Ray with 1 actor vs 2.
scaling (a many-core machine): mels (decode, time expansion, STFT: no model, the CPU side Ray scales) on Ray
    with 1 CPU and with N CPUs (`--cpus-list 1,8`), each in its own process with its own local Ray; prints
    files/s and the ratio (target >= 5x from 1 to 8 CPUs).
gpu (a CUDA machine): a base-size wav2vec2 (random weights) tokenizing the corpus on one GPU actor fed by Ray
    tasks on the machine's cores, against the bare bf16 forward over the same windows in the same batches
    (tools/bench/w2v_kmeans.py's bound); target: Ray >= 50% of the bare forward's audio-s/s.

    python tools/bench/ray_engine.py --minutes 10
    python tools/bench/ray_engine.py --mode scaling --cpus-list 1,8
    python tools/bench/ray_engine.py --mode gpu --files 300
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
from w2v_kmeans import bare_forward, build_corpus  # noqa: E402


def audio_minutes(root: Path) -> float:
    import soundfile

    from bat_core.dataset import Dataset

    return sum(soundfile.info(str(item.path)).duration for item in Dataset.from_root(root)) / 60


def corpus_of(tmp: Path, minutes: float) -> Path:
    files = 40
    while True:
        root = build_corpus(tmp / f"corpus-{files}", files)
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
    print(f"target: Ray / local <= 1.3x: {ratio:.2f}x: {'met' if ratio <= 1.3 else 'MISSED'}")
    print(f"scaling (report only): Ray 1 actor {one_s:.1f} s, 2 actors {two_s:.1f} s: {one_s / two_s:.2f}x")


SCALING_SIDE = """
import json, sys, time
import ray
from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, compute_mels
from bat_core.ray_engine import RayOptions
from bat_core.runner import RunOptions
cpus = int(sys.argv[3])
ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
dataset = Dataset.from_root(sys.argv[1], sys.argv[2])
started = time.perf_counter()
summary = compute_mels(dataset, MelConfig(), options=RunOptions(show_progress=False, ray=RayOptions(workers=cpus)))
print(json.dumps({"seconds": time.perf_counter() - started, "done": summary.done}))
"""


def scaling(args, tmp: Path) -> None:
    root = build_corpus(tmp / "corpus", args.files)
    rates = {}
    for cpus in args.cpus_list:
        out = subprocess.run([sys.executable, "-c", SCALING_SIDE, str(root), str(tmp / f"mels-{cpus}"), str(cpus)],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rates[cpus] = result["done"] / result["seconds"]
        print(f"{cpus} CPUs: {result['done']} files in {result['seconds']:.1f} s: {rates[cpus]:.2f} files/s")
    low, high = min(rates), max(rates)
    ratio = rates[high] / rates[low]
    print(f"target: {low} -> {high} CPUs >= 5x: {ratio:.2f}x: {'met' if ratio >= 5 else 'MISSED'}")


def gpu(args, tmp: Path) -> None:
    import ray
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from bat_core.ray_engine import RayOptions
    from bat_core.runner import RunOptions

    root = build_corpus(tmp / "corpus", args.files)
    model_dir = tmp / "wav2vec2-base-random"
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(model_dir)
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(model_dir)
    bare = bare_forward(root, model_dir, 15.0, tmp / "frames.npy", args.device)
    (tmp / "frames.npy").unlink()
    bare_rate = bare["audio_s"] / bare["bare_forward_s"]
    tokenizer = tokenizer_for(model_dir, root, args.device)
    ray.init(include_dashboard=False, log_to_driver=False)
    gpus = 1.0 if args.device == "cuda" else 0.0  # cpu: a smoke test of this mode
    options = RunOptions(show_progress=False, ray=RayOptions(workers=1, gpus_per_worker=gpus))
    ray_s, done = encode_seconds(root, tmp / "ray", tokenizer, options)
    again_s, _ = encode_seconds(root, tmp / "ray-again", tokenizer, options)
    shared_s, _ = encode_seconds(root, tmp / "ray-shared", tokenizer,
                                 replace(options, ray=RayOptions(workers=4, gpus_per_worker=gpus / 4)))
    best = min(ray_s, again_s)
    rate = bare["audio_s"] / best
    card = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"{done} files, {bare['audio_s']:.0f} s of 16 kHz model audio, {card}, "
          f"{os.cpu_count()} cores, Ray {ray.__version__}")
    print(f"bare {bare['precision']} forward: {bare_rate:.0f} audio-s/s ({bare['bare_forward_s']:.1f} s); Ray, one GPU "
          f"actor: {rate:.0f} audio-s/s ({ray_s:.1f} s, again {again_s:.1f} s; actor start and model load included)")
    print(f"target: Ray >= 50% of the bare forward: {rate / bare_rate:.0%}: {'met' if rate >= 0.5 * bare_rate else 'MISSED'}")
    print(f"report only: 4 actors sharing the GPU (--gpus-per-worker 0.25): {bare['audio_s'] / shared_s:.0f} audio-s/s "
          f"({shared_s:.1f} s): {bare['audio_s'] / shared_s / bare_rate:.0%} of the bare forward")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("overhead", "scaling", "gpu"), default="overhead")
    parser.add_argument("--minutes", type=float, default=10.0, help="overhead: at least this much audio")
    parser.add_argument("--files", type=int, default=200, help="scaling, gpu: files (shared/bats or the demo, cycled)")
    parser.add_argument("--cpus-list", type=lambda text: [int(v) for v in text.split(",")], default=[1, 8])
    parser.add_argument("--device", default="cuda", help="gpu: cuda (default), or cpu for a smoke test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        {"overhead": overhead, "scaling": scaling, "gpu": gpu}[args.mode](args, Path(tmp))


if __name__ == "__main__":
    main()
