"""Feeding: the whole bat-w2v-kmeans `run` with an encoder that costs nothing, at 1, 2, ... decoding workers.

How much model audio the pipeline alone moves per second (issue 10): decoding, time expansion and
resampling in the worker processes, windows, length batches, the model's inputs and copies, the frame
cache, the k-means sample and fit, tokens from the cache, the store. Targets: 2 workers >= 1.7x of 1
on the 2-core CPU machine; > 6000 model-audio-s/s on the 16-core device.

Corpus: N files (default 128) cycling through the real recordings in shared/bats (the synthetic demo
corpus if absent), time expansion 15 by default (the package's `auto` at 16 kHz).
Encoder: a wav2vec2 config folder with the base models' frame rate (320 samples per frame at 16 kHz)
and width (768), one tiny layer, loaded by `SpeechEncoder.from_pretrained`; in the benchmark process
only, its model's forward is replaced by zeros of the real output's shape (batch, frames, hidden),
dtype and device. The decoding workers never import the model. Everything else is the package's
`run_pipeline` with its defaults (k 128, 50,000 fit frames).

Each worker count runs in a fresh process. Prints per worker count: wall seconds and model-audio-s/s
of the whole run, the seconds of its passes (encoder pass, k-means fit, tokens from the cache), and
where the time went: the main process's CPU time against the wall, how long it waited for decoded
pieces (with 0 workers: decoding itself), and the workers' CPU time.

    python tools/bench/w2v_feeding.py                                      # 128 files, 1 and 2 workers
    python tools/bench/w2v_feeding.py --workers-list 1,2,8,16 --device cuda  # the 16-core device
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from w2v_kmeans import build_corpus, met, timed_passes  # noqa: E402

BASE_HIDDEN = 768  # wav2vec2-base / HuBERT-base width: the frames the cache, the sample and the tokens handle
TWO_WORKER_TARGET = 1.7  # 2 workers / 1 worker, on the 2-core machine
DEVICE_TARGET = 6000.0  # model-audio-s/s on the 16-core device
DEVICE_CORES = 16


def make_stub_model_dir(directory: Path, hidden: int) -> Path:
    """A wav2vec2 folder with the base models' convolution strides (frame rate) and ``hidden`` width, and
    one tiny layer: it loads fast; its forward is replaced anyway."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=1, num_attention_heads=1, intermediate_size=64,
                            conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=math.gcd(hidden, 16))
    Wav2Vec2Model(config).eval().save_pretrained(directory)
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(directory)  # as wav2vec2-base's
    return directory


class ZeroForward:
    """Stands in for the encoder's model: the forward costs nothing and gives zeros of the real output's
    shape (batch, frames at the real frame rate, hidden), dtype and device."""

    def __init__(self, encoder):
        self.config = encoder.model.config
        self.hidden = encoder.hidden_size
        self.frame_count = encoder.frame_count

    def __call__(self, values, output_hidden_states: bool = False, **kwargs):
        import torch

        frames = torch.zeros((values.shape[0], self.frame_count(values.shape[1]), self.hidden), dtype=values.dtype,
                             device=values.device)
        layers = (frames,) * (self.config.num_hidden_layers + 1) if output_hidden_states else None
        return SimpleNamespace(last_hidden_state=frames, hidden_states=layers)


@contextmanager
def timed_waits() -> Iterator[dict[str, dict[str, float]]]:
    """Per runner pass (by its description): the main process's wall seconds waiting for the next decoded
    message (``bat_core.workers.messages``, which ``bat_core.runner.run`` imports at each call), and how much
    of that was the wait for the first one (the workers' start-up); restored on exit."""
    import bat_core.workers as workers

    waits: dict[str, dict[str, float]] = {}
    original = workers.messages

    def messages(items, prepare, options):
        wait = waits.setdefault(options.description, {"seconds": 0.0, "first_s": 0.0})
        inner = original(items, prepare, options)
        first = True
        try:
            while True:
                started = time.perf_counter()
                message = next(inner, None)  # (file index, message) tuples: never None
                seconds = time.perf_counter() - started
                wait["seconds"] += seconds
                if first:
                    wait["first_s"] += seconds
                    first = False
                if message is None:
                    return
                yield message
        finally:
            inner.close()  # stops the workers, as the runner closing the original would

    workers.messages = messages
    try:
        yield waits
    finally:
        workers.messages = original


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure_run(root: Path, model_dir: Path, expansion: float, workers: int, device: str, out: Path,
                profile_rows: int = 0) -> dict:
    """One whole `run` (``run_pipeline``) with the zero forward; the model load is outside the clock (and outside
    the profile, when ``profile_rows`` asks for one)."""
    import logging

    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.store import STATUS_OK, read_manifest
    from bat_core.time_expansion import TimeExpansion
    from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer, run_pipeline
    from bat_w2v_kmeans.defaults import REPRESENTATION

    logging.basicConfig(level=logging.ERROR)  # the band-loss warnings of real recordings: not this benchmark's news
    dataset = Dataset.from_root(root, derived=out)
    encoder = SpeechEncoder.from_pretrained(model_dir, device=device)
    encoder.model = ZeroForward(encoder)
    tokenizer = W2VKMeansTokenizer(encoder, TimeExpansion.parse(expansion))
    main_cpu, children_cpu = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    profile = cProfile.Profile() if profile_rows else None
    with timed_passes() as passes, timed_waits() as waits:
        if profile:
            profile.enable()
        result = run_pipeline(dataset, tokenizer, options=RunOptions(workers=workers, show_progress=False))
        if profile:
            profile.disable()
    wall = time.perf_counter() - started
    manifest = read_manifest(dataset.paths.manifest_path(REPRESENTATION))
    ok = manifest[manifest["status"] == STATUS_OK]
    return {"workers": workers, "wall_s": wall, "model_audio_s": float((ok["seconds"] * ok["time_expansion"]).sum()),
            "frames_pass_s": passes.get("run: frames", 0.0), "tokens_pass_s": passes.get("run: tokens", 0.0),
            "fit_s": result.codebook.info.extra["fit_seconds"], "waits": waits,
            "main_cpu_s": cpu_seconds(resource.RUSAGE_SELF) - main_cpu,
            "workers_cpu_s": cpu_seconds(resource.RUSAGE_CHILDREN) - children_cpu,
            "done": result.tokens.done, "failed": result.tokens.failed, "failures": result.tokens.failures[:3],
            "device": str(encoder.device), "precision": encoder.precision, **_profile_text(profile, profile_rows)}


def _profile_text(profile: cProfile.Profile | None, rows: int) -> dict[str, str]:
    if profile is None:
        return {}
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(rows)
    return {"profile": text.getvalue()}


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be worker counts separated by commas, e.g. 1,2,8, got {text!r}") from None
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"must be worker counts >= 0 separated by commas, got {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=128)
    parser.add_argument("--time-expansion", type=float, default=15.0)
    parser.add_argument("--workers-list", type=worker_counts, default=[1, 2], metavar="N,N,...",
                        help="decoding worker counts to measure, each in a fresh process (default: 1,2)")
    parser.add_argument("--device", default="auto", help="where the zero frames live: auto (cuda > mps > cpu), cpu, cuda")
    parser.add_argument("--hidden", type=int, default=BASE_HIDDEN, help=f"frame width (default: {BASE_HIDDEN}, base models)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print the N functions of the main process with the most own time (cProfile; it "
                             "slows the run: compare rates only between runs without it)")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        result = measure_run(Path(args.root), Path(args.model), args.time_expansion, args.measure, args.device,
                             Path(args.out), args.profile)
        Path(args.result).write_text(json.dumps(result))
        return

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = build_corpus(tmp_path / "corpus", args.files)
        model_dir = make_stub_model_dir(tmp_path / "wav2vec2-stub", args.hidden)
        for workers in args.workers_list:
            result_path = tmp_path / f"workers-{workers}.json"
            subprocess.run([sys.executable, __file__, "--measure", str(workers), "--root", str(root), "--model",
                            str(model_dir), "--out", str(tmp_path / f"derived-{workers}"), "--result", str(result_path),
                            "--time-expansion", str(args.time_expansion), "--device", args.device,
                            "--profile", str(args.profile)], check=True)
            results.append(json.loads(result_path.read_text()))

    first = results[0]
    print(f"{args.files} files, {first['model_audio_s']:.0f} s of model audio (time expansion {args.time_expansion:g}), "
          f"zero forward ({args.hidden} wide, 50 frames/s) on {first['device']} ({first['precision']}), "
          f"{os.cpu_count()} cores")
    for r in results:
        if r["failed"] or r["done"] != args.files:
            print(f"workers {r['workers']}: {r['done']} files done, {r['failed']} failed, e.g. {r['failures']}")
    print(f"{'workers':>7s} {'wall s':>7s} {'audio-s/s':>10s} {'main CPU s':>10s} {'workers CPU s':>13s}")
    for r in results:
        print(f"{r['workers']:7d} {r['wall_s']:7.2f} {r['model_audio_s'] / r['wall_s']:10.0f} {r['main_cpu_s']:10.2f} "
              f"{r['workers_cpu_s']:13.2f}")
    print("main CPU s: this process's CPU time during the run (threads included), against its wall s; workers CPU s: "
          "the decoding processes'")
    print("where the wall time went (waited: the main process waiting for decoded pieces, first: of that, for the "
          "first piece of the pass: worker start-up):")
    for r in results:
        parts = []
        for name, seconds in (("encoder pass", r["frames_pass_s"]), ("tokens pass", r["tokens_pass_s"])):
            wait = r["waits"].get("run: frames" if name == "encoder pass" else "run: tokens", {"seconds": 0, "first_s": 0})
            parts.append(f"{name} {seconds:.2f} s (waited {wait['seconds']:.2f}, first {wait['first_s']:.2f})")
        other = r["wall_s"] - r["frames_pass_s"] - r["tokens_pass_s"] - r["fit_s"]
        print(f"  {r['workers']} workers: {parts[0]}, k-means {r['fit_s']:.2f} s, {parts[1]}, other {other:.2f} s")
    for r in results:
        if "profile" in r:
            print(f"main process of the run with {r['workers']} workers, by own time (cProfile):\n{r['profile']}")
    rates = {r["workers"]: r["model_audio_s"] / r["wall_s"] for r in results}
    if 1 in rates and 2 in rates:
        ratio = rates[2] / rates[1]
        print(f"2 workers / 1 worker: {ratio:.2f}x (target >= {TWO_WORKER_TARGET}x on the 2-core machine: "
              f"{met(ratio >= TWO_WORKER_TARGET)})")
    best = max(rates, key=rates.get)
    verdict = (met(rates[best] > DEVICE_TARGET) if (os.cpu_count() or 1) >= DEVICE_CORES
               else f"report only here ({os.cpu_count()} cores)")
    print(f"best: {rates[best]:.0f} model-audio-s/s at {best} workers (target on the {DEVICE_CORES}-core device: "
          f"> {DEVICE_TARGET:.0f}: {verdict})")


if __name__ == "__main__":
    main()
