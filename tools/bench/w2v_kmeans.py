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
package: bat-w2v-kmeans `run_pipeline` (what `run` does), default precision, `--workers` decoding
processes: one encoder pass streaming frames into the k-means sample and a frame cache in the
store, the k-means fit, then tokens from the cache through the store. Its total includes loading
the encoder; its extraction is the encoder pass.
bare: the model forward alone over the package's own windows in the package's own batches (its
prepare, decoded beforehand; the runner's LengthBatcher with the encoder's limits); only the
forward is timed. Its frames score both codebooks on all frames.

Each side runs in its own process; peak memory is sampled over that process's whole tree (the
package's decoding workers included). Prints: total time ratio, extraction time ratio, k-means
fit time ratio with the inertia ratio (both codebooks scored on all frames), peak memory of each,
the package's extraction time against the bare forward, and the targets. Issue 10's CPU target
(total >= 2x the naive recipe, default precision) is for `--files 128 --time-expansion 1`.

    python tools/bench/w2v_kmeans.py --files 128 --time-expansion 1
    python tools/bench/w2v_kmeans.py --files 500
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_tree import measure  # noqa: E402

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
        os.symlink(original.resolve(), audio / name)
        names.append(name)
    with open(root / "data" / "annotations.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["File Name"])
        writer.writerows([n] for n in names)
    return root


def naive(root: Path, model_dir: Path, expansion: float, device: str = "cpu") -> dict:
    import librosa
    import torch
    from sklearn.cluster import KMeans
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    model = Wav2Vec2Model.from_pretrained(model_dir).eval().to(device)  # the recipe's default precision: fp32
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
            features.append(model(inputs.input_values.to(device)).last_hidden_state[0].cpu().numpy())
    extraction = time.perf_counter() - started
    frames = np.concatenate(features)
    fit_started = time.perf_counter()
    kmeans = KMeans(K, random_state=0).fit(frames)
    fit = time.perf_counter() - fit_started
    tokens = [kmeans.predict(f) for f in features]
    total = time.perf_counter() - started
    return {"extraction_s": extraction, "fit_s": fit, "total_s": total, "frames": len(frames), "audio_s": seconds,
            "centroids": kmeans.cluster_centers_.tolist(), "tokens": sum(len(t) for t in tokens)}


@contextmanager
def timed_passes() -> Iterator[dict[str, float]]:
    """Wall seconds of each runner pass of ``run_pipeline``, by the pass's description ("run: frames": the one
    encoder pass; "run: tokens": tokens from the cached frames), timed around ``run`` as ``bat_w2v_kmeans.api``
    calls it (this process only; restored on exit)."""
    import bat_w2v_kmeans.api as api

    seconds: dict[str, float] = {}
    original = api.run

    def run(items, prepare, sink, encoder=None, options=None):
        started = time.perf_counter()
        try:
            return original(items, prepare, sink, encoder, options)
        finally:
            seconds[options.description] = seconds.get(options.description, 0.0) + time.perf_counter() - started

    api.run = run
    try:
        yield seconds
    finally:
        api.run = original


def package(root: Path, model_dir: Path, expansion: float, out: Path, workers: int, precision: str = "auto",
            device: str = "cpu") -> dict:
    """bat-w2v-kmeans as `run` does it: ``run_pipeline``, one encoder pass (frames into the sample and a frame
    cache), the k-means fit, tokens from the cache. Total includes loading the encoder (not importing transformers),
    as it always has."""
    import torch
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, Wav2Vec2Model  # noqa: F401

    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.time_expansion import TimeExpansion
    from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer, run_pipeline

    # transformers is imported above, before the clock, as the naive side's imports are (the package imports
    # it lazily, inside from_pretrained: ~4 s here that is start-up, not the work compared)
    dataset = Dataset.from_root(root, derived=out)
    started = time.perf_counter()
    encoder = SpeechEncoder.from_pretrained(model_dir, device=device, precision=precision)
    load = time.perf_counter() - started
    tokenizer = W2VKMeansTokenizer(encoder, TimeExpansion.parse(expansion))
    with timed_passes() as passes:
        result = run_pipeline(dataset, tokenizer, k=K, max_fit_frames=50_000, seed=0,
                              options=RunOptions(workers=workers, show_progress=False))
    total = time.perf_counter() - started
    info = result.codebook.info
    return {"extraction_s": passes["run: frames"], "fit_s": info.extra["fit_seconds"], "total_s": total, "load_s": load,
            "tokens_s": passes.get("run: tokens", 0.0), "frames": info.frames_seen, "fit_frames": info.fit_frames,
            "centroids": result.codebook.centroids.tolist(), "done": result.tokens.done, "failed": result.tokens.failed,
            "torch_threads": torch.get_num_threads(), "workers": workers, "precision": encoder.precision,
            "device_name": torch.cuda.get_device_name(encoder.device) if encoder.device.type == "cuda" else "cpu"}


def runner_batches(root: Path, encoder, expansion: float, flush_every: int | None = None,
                   order: Callable[[list], list] | None = None) -> list[list]:
    """The package's windows of every recording in ``root``, in the runner's batches (``LengthBatcher`` with the
    encoder's limits); ``flush_every=N``: flushed after every N files, as one call of a ``--engine ray`` actor
    does, the files in ``order(items)`` (the Ray engine's ``call_order``) when given."""
    from bat_core.batching import LengthBatcher
    from bat_core.dataset import Dataset
    from bat_core.runner import Piece
    from bat_core.time_expansion import TimeExpansion
    from bat_w2v_kmeans import W2VKMeansTokenizer

    prepare = W2VKMeansTokenizer(encoder, TimeExpansion.parse(expansion)).prepare()
    batcher = LengthBatcher(encoder.batch_size, encoder.max_batch_samples())
    items = list(Dataset.from_root(root))
    batches: list[list[Piece]] = []
    for index, item in enumerate(order(items) if order else items):
        try:
            for position, message in enumerate(prepare(item)):
                if isinstance(message, Piece):
                    message.file, message.index = index, position
                    batches.extend(batcher.add(message))
        except Exception:  # the runner fails such a file and drops its pieces: so does the bound
            batcher.drop(index)
        if flush_every and (index + 1) % flush_every == 0:
            batches.extend(batcher.flush())
    batches.extend(batcher.flush())
    return batches


def bare_forward(root: Path, model_dir: Path, expansion: float, frames_path: Path | None, device: str = "cpu",
                 flush_every: int | None = None, order: Callable[[list], list] | None = None) -> dict:
    """The bound: the model forward alone over the package's own windows in the package's own batches.

    Windows come from the package's prepare (decoded inline, beforehand), batches from the runner's
    ``LengthBatcher`` with the encoder's limits, the model's inputs built and put on the device
    beforehand (``SpeechEncoder.model_inputs``, as `run` builds them); after one warm-up batch only the
    forwards are timed (synchronised on CUDA), in the encoder's default precision (bf16 on a GPU). Each
    window's own frames are then saved to ``frames_path`` (every frame of the corpus, to score both
    codebooks on the same data), outside the clock (``frames_path`` None: not saved). ``flush_every``, ``order``:
    the batches of ``--engine ray`` actor calls (``runner_batches``)."""
    import torch

    from bat_w2v_kmeans import SpeechEncoder
    from bat_w2v_kmeans.forward import OwnedFrames

    encoder = SpeechEncoder.from_pretrained(model_dir, device=device)
    batches = runner_batches(root, encoder, expansion, flush_every, order)
    inputs = [encoder.model_inputs(batch) for batch in batches]
    synchronize = torch.cuda.synchronize if encoder.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        values, kwargs = inputs[0]
        encoder.model(values, **kwargs)  # warm-up: kernels chosen, memory pooled
        synchronize()
        started = time.perf_counter()
        for values, kwargs in inputs:
            encoder.model(values, **kwargs)
        synchronize()
        seconds = time.perf_counter() - started
        if frames_path is not None:
            forward = OwnedFrames(encoder)
            frames = [frame for batch in batches for frame in forward(batch)()]
    if frames_path is not None:
        frames_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(frames_path, np.concatenate(frames))
    return {"bare_forward_s": seconds, "batches": len(batches), "windows": sum(len(b) for b in batches),
            "audio_s": sum(len(piece.data) for batch in batches for piece in batch) / encoder.sample_rate,
            "precision": encoder.precision}


def inertia_on_all(frames: np.ndarray, centroids: np.ndarray) -> float:
    import torch

    from bat_core.kmeans import nearest

    _, distances = nearest(torch.from_numpy(frames), torch.from_numpy(np.asarray(centroids, dtype=np.float32)))
    return float(distances.sum())


def side(args) -> None:
    root, model_dir = Path(args.root), Path(args.model)
    if args.side == "naive":
        result = naive(root, model_dir, args.time_expansion, args.device)
    elif args.side == "package":
        result = package(root, model_dir, args.time_expansion, Path(args.out), args.workers, device=args.device)
    elif args.side == "package-bf16":
        result = package(root, model_dir, args.time_expansion, Path(args.out), args.workers, "bf16", args.device)
    else:
        result = bare_forward(root, model_dir, args.time_expansion, Path(args.out) / "frames.npy", args.device)
    result["main_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.result).write_text(json.dumps(result))


def run_side(name: str, args, root: Path, model_dir: Path, tmp_path: Path) -> dict:
    """One side in its own process; its peak memory is that of its whole process tree (decoding workers included)."""
    result_path = tmp_path / f"{name}.json"
    measured = measure([sys.executable, __file__, "--side", name, "--root", str(root), "--model", str(model_dir),
                        "--out", str(tmp_path / f"derived-{name}"), "--result", str(result_path),
                        "--time-expansion", str(args.time_expansion), "--workers", str(args.workers),
                        "--device", args.device])
    if measured.returncode != 0:
        print(measured.output, file=sys.stderr)
        raise SystemExit(f"the {name} side failed (exit code {measured.returncode})")
    return {**json.loads(result_path.read_text()), "peak_rss_mb": measured.peak_mb}


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def gpu_targets(n: dict, p: dict, bare: dict) -> None:
    """Issue 10's GPU targets: `run` (model load excluded) >= 50% of the bare bf16 forward's audio-s/s, and
    >= 10x the naive recipe (its model load excluded too) at equal work on >= 30 minutes of audio."""
    run_s = p["total_s"] - p["load_s"]
    audio = n["audio_s"]
    run_rate, bare_rate, naive_rate = audio / run_s, audio / bare["bare_forward_s"], audio / n["total_s"]
    print(f"model-audio-s/s over the corpus's {audio:.0f} s: run {run_rate:.0f} (load excluded: {run_s:.1f} s), "
          f"bare {bare['precision']} forward {bare_rate:.0f} ({bare['bare_forward_s']:.2f} s), naive recipe "
          f"{naive_rate:.0f} ({n['total_s']:.1f} s)")
    print(f"targets (GPU): run >= 50% of the bare forward: {run_rate / bare_rate:.0%}: {met(run_rate >= 0.5 * bare_rate)}; "
          f"run >= 10x the naive recipe on >= 30 min: {run_rate / naive_rate:.1f}x on {audio / 60:.0f} min: "
          f"{met(run_rate >= 10 * naive_rate and audio >= 1800)}")


def main() -> None:
    from bat_core.cli_common import default_workers, non_negative_int

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--time-expansion", type=float, default=15.0)
    parser.add_argument("--workers", type=non_negative_int, default=default_workers(),
                        help=f"the package's decoding processes (default: one per core up to 8: {default_workers()} here)")
    parser.add_argument("--device", default="cpu", help="where both sides run the model: cpu (default) or cuda")
    parser.add_argument("--json", help="also write every side's measurements here")
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

    from bat_core.device import cpu_supports_bf16

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = build_corpus(tmp_path / "corpus", args.files)
        model_dir = tmp_path / "wav2vec2-base-random"
        torch.manual_seed(0)
        Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(model_dir)
        Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(model_dir)
        opt_in_bf16 = args.device == "cpu" and cpu_supports_bf16()
        sides = ("naive", "package", "bare") + (("package-bf16",) if opt_in_bf16 else ())
        results = {name: run_side(name, args, root, model_dir, tmp_path) for name in sides}
        frames = np.load(tmp_path / "derived-bare" / "frames.npy")
    n, p, bare = results["naive"], results["package"], results["bare"]
    n_inertia, p_inertia = inertia_on_all(frames, n["centroids"]), inertia_on_all(frames, p["centroids"])
    if args.json:
        Path(args.json).write_text(json.dumps({name: {k: v for k, v in r.items() if k != "centroids"}
                                                for name, r in results.items()}, indent=1))
    print(f"{args.files} files, {n['audio_s']:.0f} s of 16 kHz audio per side ({n['frames']} frames), time expansion "
          f"{args.time_expansion:g}, base wav2vec2 (random weights), on {p['device_name']} (package {p['precision']}, "
          f"bare forward {bare['precision']}, naive float32), CPU threads {p['torch_threads']}, package decoding "
          f"workers {p['workers']} ({os.cpu_count()} cores)")
    if p["failed"] or p["done"] != args.files:
        print(f"package: {p['done']} files done, {p['failed']} failed")
    print(f"{'':9s} {'total s':>8s} {'extract s':>10s} {'k-means s':>10s} {'peak MB':>8s}  (peak: process tree, workers included)")
    for name, r in (("naive", n), ("package", p)):
        print(f"{name:9s} {r['total_s']:8.1f} {r['extraction_s']:10.1f} {r['fit_s']:10.2f} {r['peak_rss_mb']:8.0f}")
    rest = p["total_s"] - p["load_s"] - p["extraction_s"] - p["fit_s"] - p["tokens_s"]
    print(f"package total = load {p['load_s']:.1f} s + encoder pass {p['extraction_s']:.1f} s + k-means {p['fit_s']:.2f} s "
          f"+ tokens from the cache {p['tokens_s']:.1f} s + the rest {rest:.1f} s")
    total_ratio, extraction_ratio = n["total_s"] / p["total_s"], n["extraction_s"] / p["extraction_s"]
    fit_ratio, inertia_ratio = n["fit_s"] / p["fit_s"], p_inertia / n_inertia
    memory_ratio = p["peak_rss_mb"] / n["peak_rss_mb"]
    bound_ratio = p["extraction_s"] / bare["bare_forward_s"]
    print(f"total: {total_ratio:.2f}x faster; extraction: {extraction_ratio:.2f}x faster; "
          f"k-means fit: {fit_ratio:.1f}x faster (fitted on {p['fit_frames']} of {p['frames']} frames) at "
          f"inertia {inertia_ratio:.3f}x (both scored on all {len(frames)} frames)")
    print(f"peak memory: package {memory_ratio:.2f}x the naive recipe")
    print(f"package extraction vs bare batched forward over the same audio: {bound_ratio:.2f}x "
          f"({p['extraction_s']:.1f} s vs {bare['bare_forward_s']:.1f} s: the forward alone on the package's "
          f"{bare['windows']} windows in its {bare['batches']} batches); the bare forward is "
          f"{n['extraction_s'] / bare['bare_forward_s']:.2f}x the naive extraction")
    if "package-bf16" in results:  # opt-in --precision bf16 on a CPU with native bf16
        b = results["package-bf16"]
        print(f"opt-in --precision bf16 (CPU has native bf16): total {n['total_s'] / b['total_s']:.2f}x faster, extraction "
              f"{n['extraction_s'] / b['extraction_s']:.2f}x, peak memory {b['peak_rss_mb'] / n['peak_rss_mb']:.2f}x, "
              f"inertia {inertia_on_all(frames, b['centroids']) / n_inertia:.3f}x")
    if args.device != "cpu":
        gpu_targets(n, p, bare)
        return
    if args.time_expansion == 1:
        total_target = f"total >= 2x at default precision (issue 10, CPU equal work, --files 128): {met(total_ratio >= 2)}"
    else:
        total_target = "total: report only at this time expansion (issue 10's target is at --time-expansion 1)"
    print(f"targets: {total_target}; k-means >= 10x at inertia <= 1.02x: {met(fit_ratio >= 10 and inertia_ratio <= 1.02)}; "
          f"memory <= 0.5x: {met(memory_ratio <= 0.5)}; extraction within 1.15x of the bare forward: "
          f"{met(bound_ratio <= 1.15)}")


if __name__ == "__main__":
    main()
