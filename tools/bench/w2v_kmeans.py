"""wav2vec2 + k-means: the naive recipe vs bat-w2v-kmeans on the same files, one run.

Corpus: N files (default 500) cycling through the real recordings in shared/bats (the
synthetic demo corpus if absent). Encoder: a base-size wav2vec2 (95M parameters) with random
weights, saved with save_pretrained and loaded from disk by both sides. Equal work: the same
seconds of audio reach the encoder on both sides: time expansion 15 by default (what the package's
`auto` picks at 16 kHz so calls up to 120 kHz survive; the naive side loads at 16000*15 Hz and reads
that as 16 kHz); `--time-expansion 1` is the naive recipe's straight resampling, which keeps no call.

naive: per file librosa.load(sr=16000) (time-expanded: sr=16000*K read as 16000), the feature
extractor, a single-file forward, frames kept in a list; sklearn KMeans(128, random_state=0)
on all frames; per-file predict.
package: bat-w2v-kmeans as `run`: one encoder pass streaming frames into the reservoir and a
disk cache, the k-means fit, then tokens from the cache through the store.

Each side runs in its own process so peak memory (ru_maxrss) is its own. Prints: total time
ratio, extraction time ratio, k-means fit time ratio with the inertia ratio (both codebooks
scored on all frames), peak memory of each, and the package's extraction time against the
bare batched model forward over the same audio.

    python tools/bench/w2v_kmeans.py --files 500
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K = 128


def build_corpus(root: Path, files: int) -> Path:
    from bat_core.demo import write_demo_corpus
    from bat_core.testing import find_shared_bats

    source = find_shared_bats()
    if source is None:
        print("shared/bats not found: cycling the synthetic demo corpus", file=sys.stderr)
        source = write_demo_corpus(root.parent / "demo", n_files=24)
    recordings = sorted((source / "data" / "audio").iterdir())
    audio = root / "data" / "audio"
    audio.mkdir(parents=True)
    names = []
    for index in range(files):
        original = recordings[index % len(recordings)]
        name = f"{index:05d}_{original.stem}{original.suffix}"
        os.symlink(original, audio / name)
        names.append(name)
    with open(root / "data" / "annotations.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["File Name"])
        writer.writerows([n] for n in names)
    return root


def naive(root: Path, model_dir: Path, expansion: float) -> dict:
    import librosa
    import torch
    from sklearn.cluster import KMeans
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    model = Wav2Vec2Model.from_pretrained(model_dir).eval()
    names = [row["File Name"] for row in csv.DictReader(open(root / "data" / "annotations.csv"))]
    started = time.perf_counter()
    features, seconds = [], 0.0
    with torch.inference_mode():
        for name in names:
            # time expansion K: resampling to 16000*K and reading the result as 16 kHz slows it K times
            waveform, _ = librosa.load(str(root / "data" / "audio" / name), sr=int(16000 * expansion))
            seconds += len(waveform) / 16000
            if len(waveform) < 400:  # the one fix the naive recipe needs to run: clips shorter than one frame
                waveform = np.pad(waveform, (0, 400 - len(waveform)))
            inputs = extractor(waveform, sampling_rate=16000, return_tensors="pt")
            features.append(model(inputs.input_values).last_hidden_state[0].numpy())
    extraction = time.perf_counter() - started
    frames = np.concatenate(features)
    fit_started = time.perf_counter()
    kmeans = KMeans(K, random_state=0).fit(frames)
    fit = time.perf_counter() - fit_started
    tokens = [kmeans.predict(f) for f in features]
    total = time.perf_counter() - started
    return {"extraction_s": extraction, "fit_s": fit, "total_s": total, "frames": len(frames), "audio_s": seconds,
            "centroids": kmeans.cluster_centers_.tolist(), "tokens": sum(len(t) for t in tokens)}


def package(root: Path, model_dir: Path, expansion: float, out: Path, precision: str = "auto") -> dict:
    """bat-w2v-kmeans as `run` does it: one encoder pass (fit streams frames to a disk cache), fit, encode."""
    import torch

    from bat_core.dataset import Dataset
    from bat_core.time_expansion import TimeExpansion
    from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer, encode_dataset
    from bat_w2v_kmeans.encode import FrameCache

    dataset = Dataset.from_root(root, derived=out)
    started = time.perf_counter()
    encoder = SpeechEncoder.from_pretrained(model_dir, device="cpu", precision=precision)
    tokenizer = W2VKMeansTokenizer(encoder, TimeExpansion.parse(expansion))
    cache = FrameCache(out / "frame_cache")
    extraction_started = time.perf_counter()
    tokenizer.fit(dataset, k=K, max_fit_frames=50_000, seed=0, show_progress=False, frame_sink=cache)
    fit = tokenizer.codebook.info.extra["fit_seconds"]
    extraction = time.perf_counter() - extraction_started - fit
    summary = encode_dataset(dataset, tokenizer, show_progress=False, frame_cache=cache.directory)
    total = time.perf_counter() - started
    return {"extraction_s": extraction, "fit_s": fit, "total_s": total,
            "frames": tokenizer.codebook.info.frames_seen, "fit_frames": tokenizer.codebook.info.fit_frames,
            "centroids": tokenizer.codebook.centroids.tolist(), "done": summary.done, "failed": summary.failed,
            "torch_threads": torch.get_num_threads()}


def bare_forward(root: Path, model_dir: Path, expansion: float) -> dict:
    """The bound: the same batched forward passes over the same audio, decoded and resampled beforehand."""
    from bat_core.audio import load_audio
    from bat_core.dataset import Dataset
    from bat_core.time_expansion import TimeExpansion, convert_for_model
    from bat_w2v_kmeans import SpeechEncoder

    encoder = SpeechEncoder.from_pretrained(model_dir, device="cpu")
    waves = []
    for item in Dataset.from_root(root):
        recording = load_audio(item.path)
        waves.append(convert_for_model(recording.samples, recording.sample_rate, 16_000, TimeExpansion.parse(expansion))[0])
    started = time.perf_counter()
    encoder.frames(waves, batch_size=8)
    return {"bare_forward_s": time.perf_counter() - started}


def inertia_on_all(frames: np.ndarray, centroids: np.ndarray) -> float:
    import torch

    from bat_w2v_kmeans.kmeans import nearest

    _, distances = nearest(torch.from_numpy(frames), torch.from_numpy(np.asarray(centroids, dtype=np.float32)))
    return float(distances.sum())


def side(args) -> None:
    root, model_dir = Path(args.root), Path(args.model)
    if args.side == "naive":
        result = naive(root, model_dir, args.time_expansion)
    elif args.side == "package":
        result = package(root, model_dir, args.time_expansion, Path(args.out))
    elif args.side == "package-bf16":
        result = package(root, model_dir, args.time_expansion, Path(args.out), precision="bf16")
    else:
        result = bare_forward(root, model_dir, args.time_expansion)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.result).write_text(json.dumps(result))


def all_frames(root: Path, model_dir: Path, expansion: float) -> np.ndarray:
    """Every frame of the corpus (for scoring both codebooks on the same data)."""
    from bat_core.dataset import Dataset
    from bat_core.time_expansion import TimeExpansion
    from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer

    tokenizer = W2VKMeansTokenizer(SpeechEncoder.from_pretrained(model_dir, device="cpu"), TimeExpansion.parse(expansion))
    frames = [r.frames for r in tokenizer.iter_frames(list(Dataset.from_root(root)), show_progress=False) if r.frames is not None]
    return np.concatenate(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--time-expansion", type=float, default=15.0)
    parser.add_argument("--side", choices=["naive", "package", "bare", "package-bf16"], help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(args)
        return
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = build_corpus(tmp_path / "corpus", args.files)
        model_dir = tmp_path / "wav2vec2-base-random"
        torch.manual_seed(0)
        Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(model_dir)
        Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(model_dir)
        results = {}
        from bat_core.device import cpu_supports_bf16

        sides = ("naive", "package", "bare") + (("package-bf16",) if cpu_supports_bf16() else ())
        for name in sides:
            result_path = tmp_path / f"{name}.json"
            subprocess.run([sys.executable, __file__, "--side", name, "--root", str(root), "--model", str(model_dir),
                            "--out", str(tmp_path / f"derived-{name}"), "--result", str(result_path),
                            "--time-expansion", str(args.time_expansion)], check=True)
            results[name] = json.loads(result_path.read_text())
        frames = all_frames(root, model_dir, args.time_expansion)
    n, p = results["naive"], results["package"]
    p["bare_forward_s"] = results["bare"]["bare_forward_s"]
    n_inertia, p_inertia = inertia_on_all(frames, n["centroids"]), inertia_on_all(frames, p["centroids"])
    print(f"{args.files} files, {n['audio_s']:.0f} s of 16 kHz audio per side ({n['frames']} frames), time expansion "
          f"{args.time_expansion:g}, base wav2vec2 (random weights), CPU threads {p['torch_threads']}")
    print(f"{'':9s} {'total s':>8s} {'extract s':>10s} {'k-means s':>10s} {'peak MB':>8s}")
    for name, r in (("naive", n), ("package", p)):
        print(f"{name:9s} {r['total_s']:8.1f} {r['extraction_s']:10.1f} {r['fit_s']:10.2f} {r['peak_rss_mb']:8.0f}")
    print(f"total: {n['total_s'] / p['total_s']:.2f}x faster; extraction: {n['extraction_s'] / p['extraction_s']:.2f}x faster; "
          f"k-means fit: {n['fit_s'] / p['fit_s']:.1f}x faster (fitted on {p['fit_frames']} of {p['frames']} frames) at "
          f"inertia {p_inertia / n_inertia:.3f}x (both scored on all {len(frames)} frames)")
    print(f"peak memory: package {p['peak_rss_mb'] / n['peak_rss_mb']:.2f}x the naive recipe")
    print(f"package extraction vs bare batched forward over the same audio: {p['extraction_s'] / p['bare_forward_s']:.2f}x "
          f"({p['extraction_s']:.1f} s vs {p['bare_forward_s']:.1f} s)")
    if "package-bf16" in results:  # opt-in --precision bf16 on a CPU with native bf16
        b = results["package-bf16"]
        print(f"opt-in --precision bf16 (CPU has native bf16): total {n['total_s'] / b['total_s']:.2f}x faster, extraction "
              f"{n['extraction_s'] / b['extraction_s']:.2f}x, peak memory {b['peak_rss_mb'] / n['peak_rss_mb']:.2f}x, "
              f"inertia {inertia_on_all(frames, b['centroids']) / n_inertia:.3f}x")


if __name__ == "__main__":
    main()
