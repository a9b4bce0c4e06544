"""Per-call vs whole-file encoding of the same recordings: wall time ratio and share of audio encoded, per strategy.

    PYTHONPATH=... python tools/bench/per_call.py [--root ../shared/bats] [--device cpu|cuda] [--size base|tiny]

Calls come from our detector (``bat-core segment``, default settings) run first on the same root;
outputs go to a temporary --derived, never into the root. Each strategy encodes every file whole,
then every detected call (5 ms of context each side, widened to the model's shortest input), in
this process with the same loaded model, so the ratio is of the encoding alone (model loading
and the codebook fit / VQ-VAE training are outside both timings). Models have random weights
of the real sizes (wav2vec2-base, AST-base; a small VQ-VAE trained for a few steps): speed does
not depend on what the weights learned.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def share_encoded(paths, representation: str) -> tuple[float, float]:
    """(seconds encoded, seconds of the recordings) over a representation's ok rows."""
    manifest = pd.read_parquet(paths.manifest_path(representation))
    ok = manifest[manifest.status == "ok"]
    encoded = sum(json.loads(extra).get("encoded_seconds") or 0.0 for extra in ok.extra)
    return float(encoded), float(ok.seconds.sum())


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def models(folder: Path, size: str) -> tuple[Path, Path]:
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from bat_core.testing import make_tiny_ast, make_tiny_speech_encoder

    if size == "tiny":
        return make_tiny_speech_encoder(folder / "w2v"), make_tiny_ast(folder / "ast")
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(folder / "w2v")
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folder / "w2v")
    ASTModel(ASTConfig()).save_pretrained(folder / "ast")
    ASTFeatureExtractor().save_pretrained(folder / "ast")
    return folder / "w2v", folder / "ast"


def main() -> None:
    from bat_core.calls import load_selection
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.segments.command import segment_project, segments_path
    from bat_core.testing import require_shared_bats

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="project root (default: ../shared/bats)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", choices=("base", "tiny"), default="base")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--strategies", default="w2v,ast,vqvae")
    args = parser.parse_args()
    root = Path(args.root) if args.root else require_shared_bats()
    options = RunOptions(workers=args.workers, show_progress=False)
    wanted = args.strategies.split(",")
    with tempfile.TemporaryDirectory() as folder:
        derived = Path(folder) / "derived"
        dataset = Dataset.from_root(root, derived)
        seconds, segmented = timed(lambda: segment_project(dataset, options=options))
        selection = load_selection(segments_path(dataset.paths))
        print(f"segment: {len(dataset)} files, {selection.calls} calls in {seconds:.1f} s ({segmented.line()})")
        w2v_dir, ast_dir = models(Path(folder), args.size)
        rows = []
        if "w2v" in wanted:
            rows.append(w2v(dataset, selection, w2v_dir, args.device, options))
        if "ast" in wanted:
            rows.append(ast(dataset, selection, ast_dir, args.device, options))
        if "vqvae" in wanted:
            rows.append(vqvae(dataset, selection, root, derived, args.device, options))
    print(f"\nper call vs whole file ({args.size} models, device {args.device}, {args.workers} decoding workers):")
    print("| strategy | whole files (s) | per call (s) | whole / per call | audio encoded per call |")
    print("|---|---|---|---|---|")
    for name, whole, calls, encoded, total in rows:
        print(f"| {name} | {whole:.1f} | {calls:.1f} | {whole / calls:.1f}x | {100 * encoded / total:.1f}% of {total:.1f} s |")


def w2v(dataset, selection, model_dir: Path, device: str, options) -> tuple:
    from bat_core.time_expansion import TimeExpansion
    from bat_w2v_kmeans.encode import encode_dataset
    from bat_w2v_kmeans.encoder import SpeechEncoder
    from bat_w2v_kmeans.tokenizer import W2VKMeansTokenizer

    tokenizer = W2VKMeansTokenizer(SpeechEncoder.from_pretrained(model_dir, device=device), TimeExpansion())
    tokenizer.calls = selection
    tokenizer.fit(dataset, k=64, max_fit_frames=20_000, options=options)  # a codebook to encode with (not timed)
    tokenizer.calls = None
    whole, summary = timed(lambda: encode_dataset(dataset, tokenizer, options=options))
    tokenizer.calls = selection
    calls, per_call = timed(lambda: encode_dataset(dataset, tokenizer, options=options))
    print(f"w2v-kmeans: {summary.line()}\n            {per_call.line()}")
    return ("w2v-kmeans (wav2vec2)", whole, calls, *share_encoded(dataset.paths, per_call.representation))


def ast(dataset, selection, model_dir: Path, device: str, options) -> tuple:
    from bat_ast_embed.config import EmbedConfig
    from bat_ast_embed.embed import embed_dataset
    from bat_ast_embed.embedder import ASTEmbedder

    embedder = ASTEmbedder.from_pretrained(config=EmbedConfig(model=str(model_dir), max_frames="auto"), device=device)
    whole, summary = timed(lambda: embed_dataset(dataset, embedder, options=options))
    calls, per_call = timed(lambda: embed_dataset(dataset, embedder, options=options, calls=selection))
    print(f"ast: {summary.line()}\n     {per_call.line()}")
    return ("ast-embed (max-frames auto)", whole, calls, *share_encoded(dataset.paths, per_call.representation))


def vqvae(dataset, selection, root: Path, derived: Path, device: str, options) -> tuple:
    from bat_vqvae.artefact import VQVAETokenizer
    from bat_vqvae.encode import encode_dataset

    subprocess.run([sys.executable, "-m", "bat_vqvae.cli", "train", "--root", str(root), "--derived", str(derived),
                    "--steps", "30", "-q", "--device", device], check=True)
    model_dir = dataset.paths.models_dir / "vqvae"
    tokenizer = VQVAETokenizer.from_pretrained(model_dir, device=device)
    whole, summary = timed(lambda: encode_dataset(dataset, tokenizer, str(model_dir), options=options))
    calls, per_call = timed(lambda: encode_dataset(dataset, tokenizer, str(model_dir), options=options, calls=selection))
    print(f"vqvae: {summary.line()}\n       {per_call.line()}")
    return ("vqvae", whole, calls, *share_encoded(dataset.paths, per_call.representation))


if __name__ == "__main__":
    main()
