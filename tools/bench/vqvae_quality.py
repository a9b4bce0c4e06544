"""Do bat-vqvae's codes separate calls from background? A linear probe, side by side with the baselines.

Two protocols, both on shared/bats:
1. boxes: a call window is centred on each box of calls.csv (batdetect2's boxes: never our own
   detector's); background windows are cut from the same recordings, every WINDOW_MS, wherever the
   window keeps >= 5 ms from every box.
2. synthetic: call-free field audio is the stretches of the boxed recordings >= 5 ms from every box,
   and the recording whose annotation says it has no bat calls (the other recordings hold calls nobody
   boxed, so they cannot serve as background). It is cut into SYNTH_WINDOW_MS windows every SYNTH_HOP_MS; each is
   a background window as recorded, and a call window with one synthetic FM call mixed into its
   centre (a downward exponential sweep, 1-20 ms, from 40-100 kHz down to 20 kHz or more, Hann
   envelope; SNR 0-20 dB against the window's own power). Call and background windows are the same
   field audio, so only the call tells them apart.
Each window becomes a vector:
- bat-vqvae (each quantiser x code layout): normalised counts of the codes whose time steps lie in
  the window (a bag of codes; unigrams: with ~100 windows, bigrams would only overfit);
- MFCC + k-means: bag of the k-means tokens (bat-core's baseline) of the frames in the window;
- mean log-mel: the window's average log-mel (bat-core's baseline).
The probe is bat-core's: logistic regression, stratified folds grouped by recording (no recording
on both sides), accuracy mean and spread over folds; the majority class is the floor.
The VQ-VAEs train on every recording of shared/bats (no labels used, no synthetic call), ``--crops``
crops each, once for both protocols.

    python tools/bench/vqvae_quality.py --crops 2000
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

import numpy as np
from call_windows import BACKGROUND_GAP_MS, WINDOW_MS, bag, link_corpus, read_boxes, span, windows

from bat_core.audio import load_audio
from bat_core.evaluate.baselines import mfcc_kmeans_tokens
from bat_core.evaluate.probes import probe
from bat_core.mels import MelConfig, load_mels, log_mel, mel_rows
from bat_core.runner import RunOptions
from bat_core.testing import find_shared_bats
from bat_core.time_expansion import convert_for_model
from bat_vqvae import TrainConfig, VQVAEConfig, VQVAETokenizer, train
from bat_vqvae.model import codebook_entries

VARIANTS = {
    "bat-vqvae ema grid": VQVAEConfig(),
    "bat-vqvae ema time": VQVAEConfig(code_layout="time"),
    "bat-vqvae fsq grid": VQVAEConfig(quantizer="fsq"),
    "bat-vqvae fsq time": VQVAEConfig(quantizer="fsq", code_layout="time"),
    "bat-vqvae rvq grid": VQVAEConfig(quantizer="rvq"),
    "bat-vqvae rvq time": VQVAEConfig(quantizer="rvq", code_layout="time"),
}
SYNTH_WINDOW_MS = 20.0
SYNTH_HOP_MS = 5.0  # windows overlap (call-free audio is scarce); calls go into COPIES copies, no two overlapping
COPIES = int(SYNTH_WINDOW_MS // SYNTH_HOP_MS)
CALL_MS = (1.0, 20.0)
START_HZ, END_HZ = (40_000.0, 100_000.0), 20_000.0
SNR_DB = (0.0, 20.0)


def call_free_spans(boxes: list[tuple[float, float]], seconds: float) -> list[tuple[float, float]]:
    """Stretches of a recording >= BACKGROUND_GAP_MS from every box."""
    gap, spans, position = BACKGROUND_GAP_MS / 1000, [], 0.0
    for start, end in sorted(boxes):
        if start - gap > position:
            spans.append((position, start - gap))
        position = max(position, end + gap)
    if seconds > position:
        spans.append((position, seconds))
    return spans


def fm_call(seconds: float, start_hz: float, end_hz: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A downward exponential FM sweep under a Hann envelope (the shape of an FM bat call), unit RMS."""
    t = np.arange(max(2, int(round(seconds * sample_rate)))) / sample_rate
    rate = np.log(end_hz / start_hz) / seconds
    call = np.sin(2 * np.pi * start_hz * np.expm1(rate * t) / rate + rng.uniform(0, 2 * np.pi)) * np.hanning(len(t))
    return call / np.sqrt(np.mean(call ** 2))


def mix_calls(samples: np.ndarray, sample_rate: int, windows: list[tuple[float, float]],
              rng: np.random.Generator) -> np.ndarray:
    """``samples`` with one synthetic call centred in each window, at an SNR against that window's power."""
    mixed = samples.astype(np.float64).copy()
    top = min(START_HZ[1], 0.45 * sample_rate)
    for start, end in windows:
        first, last = int(start * sample_rate), int(end * sample_rate)
        power = max(float(np.mean(samples[first:last].astype(np.float64) ** 2)), 1e-12)
        seconds = min(rng.uniform(*CALL_MS) / 1000, end - start)
        start_hz = rng.uniform(min(START_HZ[0], top - 10_000), top)
        call = fm_call(seconds, start_hz, rng.uniform(END_HZ, start_hz - 10_000), sample_rate, rng)
        call *= np.sqrt(power * 10 ** (rng.uniform(*SNR_DB) / 10))
        offset = (first + last - len(call)) // 2
        mixed[offset:offset + len(call)] += call
    return mixed.astype(np.float32)


def synthetic_mels(shared: Path, boxes: dict[str, list[tuple[float, float]]], mel_config: MelConfig,
                   seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, float], list[tuple[str, float, float, str]]]:
    """Mels of each call-free source as recorded (``NAME``) and with calls mixed in (``NAME+callsK``: every
    COPIES-th window from the K-th, so calls never overlap), their frames per original second, and the windows
    (mel name, start s, end s, label)."""
    with open(shared / "data" / "annotations.csv", newline="") as handle:
        negatives = [row["File Name"] for row in csv.DictReader(handle) if row.get("n_calls") == "0"]
    rng = np.random.default_rng(seed)
    width, hop = SYNTH_WINDOW_MS / 1000, SYNTH_HOP_MS / 1000
    mels, fps, cut = {}, {}, []
    for name in sorted(boxes) + sorted(negatives):
        recording = load_audio(shared / "data" / "audio" / name)
        spans = call_free_spans(boxes.get(name, []), recording.seconds)
        windows = [(start + i * hop, start + i * hop + width) for start, end in spans
                   for i in range(int(round((end - start - width) / hop, 6)) + 1) if end - start >= width]
        if not windows:
            continue
        versions = [(name, recording.samples)]
        versions += [(f"{name}+calls{k}", mix_calls(recording.samples, recording.sample_rate, windows[k::COPIES], rng))
                     for k in range(COPIES)]
        for key, samples in versions:
            converted, conversion = convert_for_model(samples, recording.sample_rate, mel_config.sample_rate,
                                                      mel_config.time_expansion)
            mels[key], fps[key] = log_mel(converted, mel_config), mel_config.frames_per_second(conversion)
        cut += [(name, start, end, "background") for start, end in windows]
        cut += [(f"{name}+calls{k}", start, end, "call") for k in range(COPIES) for start, end in windows[k::COPIES]]
    return mels, fps, cut


def protocol_features(mels: dict[str, np.ndarray], fps: dict[str, float], cut: list[tuple[str, float, float, str]],
                      corpus_mels: dict[str, np.ndarray], tokenizers: dict[str, VQVAETokenizer]) -> dict[str, np.ndarray]:
    """One vector per window for each representation (MFCC k-means fitted on the corpus and these mels)."""
    features: dict[str, np.ndarray] = {}
    features["mean log-mel"] = np.stack([mels[n][:, span(s, e, fps[n], mels[n].shape[1])].mean(axis=1)
                                         for n, s, e, _ in cut])
    tokens = mfcc_kmeans_tokens({**{f"corpus/{k}": v for k, v in corpus_mels.items()}, **mels})
    size = int(max(t.max() for t in tokens.values())) + 1
    features["MFCC + k-means"] = np.stack([bag(tokens[n][span(s, e, fps[n], len(tokens[n]))], size) for n, s, e, _ in cut])
    for name, tokenizer in tokenizers.items():
        config = tokenizer.config
        codes = {n: codebook_entries(tokenizer.encode(mels[n]), config) for n in sorted({n for n, *_ in cut})}
        features[name] = np.stack([bag(codes[n][span(s, e, fps[n] / config.stride, len(codes[n]))],
                                       config.codebook_entries) for n, s, e, _ in cut])
    return features


def print_table(title: str, features: dict[str, np.ndarray], labels: list[str], groups: list[str]) -> None:
    floor = probe(features["mean log-mel"], labels, groups, predict_majority=True)
    print(f"\n{title}: {len(set(groups))} recordings, {labels.count('call')} call and {labels.count('background')} "
          "background windows")
    print(f"| representation | probe accuracy (mean +- std over {floor.folds} folds) | macro F1 |")
    print("|---|---|---|")
    print(f"| majority class | {floor.probe_accuracy:.3f} +- {floor.probe_accuracy_std:.3f} | "
          f"{floor.probe_macro_f1:.3f} |")
    for name, vectors in features.items():
        scored = probe(vectors, labels, groups)
        print(f"| {name} | {scored.probe_accuracy:.3f} +- {scored.probe_accuracy_std:.3f} | "
              f"{scored.probe_macro_f1:.3f} +- {scored.probe_macro_f1_std:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=2000, help="training crops per VQ-VAE (default: 2000)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names to train")
    parser.add_argument("--protocols", default="boxes,synthetic", help="comma-separated: boxes, synthetic")
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
        mels = load_mels(dataset, mel_config, options=RunOptions(show_progress=False))
        tokenizers: dict[str, VQVAETokenizer] = {}
        for name in [n for n in args.variants.split(",") if n]:
            config = VARIANTS.get(name)
            if config is None:
                raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
            steps = max(1, args.crops // TrainConfig().batch_size)
            model_dir = work / name.replace(" ", "_")
            result = train(dataset, model_dir, config, TrainConfig(steps=steps, checkpoint_every=steps), mel_config,
                           device=args.device, options=RunOptions(show_progress=False), overwrite=True)
            print(f"{name}: {result.line()}", flush=True)
            tokenizers[name] = VQVAETokenizer.from_pretrained(model_dir)

        protocols = args.protocols.split(",")
        if "boxes" in protocols:
            fps = {name: rows[name]["frames_per_second"] for name in boxes}
            durations = {name: mels[name].shape[1] / fps[name] for name in boxes}
            cut = windows(boxes, durations)
            features = protocol_features({n: mels[n] for n in boxes}, fps, cut, mels, tokenizers)
            print_table(f"boxes of calls.csv, {WINDOW_MS:g} ms windows", features, [c[3] for c in cut],
                        [c[0] for c in cut])
        if "synthetic" in protocols:
            synth, fps, cut = synthetic_mels(shared, boxes, mel_config)
            features = protocol_features(synth, fps, cut, mels, tokenizers)
            print_table(f"synthetic FM calls in call-free field audio, {SYNTH_WINDOW_MS:g} ms windows", features,
                        [c[3] for c in cut], [c[0].split("+calls")[0] for c in cut])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
