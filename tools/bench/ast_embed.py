"""AST embeddings: the naive per-file loop at 1024 frames vs bat-ast-embed, one run, same clips.

Clips: segments of the real recordings in shared/bats (the synthetic demo corpus if absent)
whose time-expanded length (x15 for a 16 kHz model) is 0.5-3 s: the length the model sees.
Model: a base-size AST (768 hidden, 12 layers, 1024 frames) with random weights, saved with
save_pretrained and loaded from disk by both sides (speed does not depend on the weights).

The naive loop: per file, the feature extractor pads to 1024 frames, batch of one.
Prints: throughput of naive, fixed-length batched, and auto; the ratios auto/naive and
fixed-batched/naive; cosine similarity of auto vs fixed embeddings of the same clips.

    python tools/bench/ast_embed.py --clips 16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

from bat_ast_embed import ASTEmbedder, EmbedConfig
from bat_core.audio import load_audio
from bat_core.dataset import Dataset
from bat_core.demo import write_demo_corpus
from bat_core.testing import find_shared_bats
from bat_core.time_expansion import TimeExpansion, convert_for_model

EXPANSION = 15


def clips(count: int, seed: int) -> list[tuple[np.ndarray, int]]:
    """``count`` clips of 0.5-3 s model time (1/30 to 1/5 s of original audio)."""
    root = find_shared_bats()
    if root is None:
        print("shared/bats not found: clips cut from the synthetic demo corpus")
        root = write_demo_corpus(Path(tempfile.mkdtemp()) / "demo", n_files=12)
    recordings = [load_audio(item.path) for item in Dataset.from_root(root)]
    rng = np.random.default_rng(seed)
    chosen = []
    while len(chosen) < count:
        recording = recordings[int(rng.integers(len(recordings)))]
        seconds = rng.uniform(0.5, 3.0) / EXPANSION
        n = int(seconds * recording.sample_rate)
        if len(recording.samples) < n:
            continue
        start = int(rng.integers(len(recording.samples) - n + 1))
        chosen.append((recording.samples[start:start + n], recording.sample_rate))
    return chosen


def naive(model_dir: Path, data: list[tuple[np.ndarray, int]]) -> tuple[list[np.ndarray], float]:
    extractor = ASTFeatureExtractor.from_pretrained(model_dir)
    model = ASTModel.from_pretrained(model_dir).eval()
    started = time.perf_counter()
    vectors = []
    with torch.inference_mode():
        for samples, rate in data:
            converted, _ = convert_for_model(samples, rate, 16_000, TimeExpansion(factor=EXPANSION))
            inputs = extractor(converted, sampling_rate=16_000, return_tensors="pt")
            vectors.append(model(**inputs).pooler_output[0].numpy())
    return vectors, time.perf_counter() - started


def package(model_dir: Path, data, max_frames) -> tuple[list[np.ndarray], float]:
    embedder = ASTEmbedder.from_pretrained(model_dir, EmbedConfig(max_frames=max_frames, time_expansion=TimeExpansion(factor=EXPANSION)),
                                           device="cpu")
    started = time.perf_counter()
    features = [embedder.features(samples, rate) for samples, rate in data]
    embeddings = embedder.embed_features(features, batch_size=8)
    return [(e.pooler, e.mean) for e in embeddings], time.perf_counter() - started


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = clips(args.clips, args.seed)
    model_seconds = sum(len(s) / r * EXPANSION for s, r in data)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "ast-base-random"
        torch.manual_seed(0)
        ASTModel(ASTConfig()).save_pretrained(model_dir)
        ASTFeatureExtractor().save_pretrained(model_dir)
        naive_vectors, naive_time = naive(model_dir, data)
        fixed_vectors, fixed_time = package(model_dir, data, None)
        auto_vectors, auto_time = package(model_dir, data, "auto")
    agree = [cosine(a[0], b) for a, b in zip(fixed_vectors, naive_vectors)]
    similarity = [cosine(a[0], f[0]) for a, f in zip(auto_vectors, fixed_vectors)]
    similarity_mean = [cosine(a[1], f[1]) for a, f in zip(auto_vectors, fixed_vectors)]
    print(f"{len(data)} clips, {model_seconds:.1f} s of model audio (0.5-3 s each after x{EXPANSION} time expansion); "
          f"base AST, random weights, CPU threads {torch.get_num_threads()}")
    for name, seconds in (("naive per-file, 1024 frames", naive_time), ("bat-ast-embed fixed 1024, batched", fixed_time),
                          ("bat-ast-embed auto", auto_time)):
        print(f"  {name:36s} {seconds:7.1f} s  {len(data) / seconds:6.2f} clips/s")
    print(f"ratio auto / naive (throughput): {naive_time / auto_time:.2f}x")
    print(f"ratio fixed-length batched / per-file naive (throughput): {naive_time / fixed_time:.2f}x")
    print(f"fixed-length package vs naive embeddings: cosine min {min(agree):.4f} (same input, same model)")
    for name, values in (("pooler output", similarity), ("mean of valid patch tokens", similarity_mean)):
        print(f"cosine(auto, fixed 1024), {name}: mean {np.mean(values):.4f}, min {np.min(values):.4f}, "
              f"max {np.max(values):.4f}")


if __name__ == "__main__":
    main()
