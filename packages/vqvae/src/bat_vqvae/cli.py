"""``bat-vqvae``: train a VQ-VAE on a project's mels, encode files into codes, render reconstructions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bat_core.cli_common import (
    EXIT_OK,
    add_command,
    add_common_arguments,
    add_time_expansion_arguments,
    cli_main,
    cli_parser,
    dataset_from_args,
    report_summary,
    show_progress,
    time_expansion_from_args,
)
from bat_core.dataset import Dataset
from bat_core.errors import BatError
from bat_core.mels import MelConfig, mel_rows
from bat_core.paths import ProjectPaths
from bat_vqvae.__about__ import __version__
from bat_vqvae.artefact import VQVAETokenizer
from bat_vqvae.config import TrainConfig, VQVAEConfig
from bat_vqvae.encode import encode_dataset
from bat_vqvae.plot import render_reconstruction
from bat_vqvae.train import train


def _model_dir(args: argparse.Namespace) -> Path:
    if args.model:
        return Path(args.model)
    return ProjectPaths.for_root(args.root, args.derived).models_dir / "vqvae"


def _train(args: argparse.Namespace) -> int:
    defaults = TrainConfig()
    train_config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, crop_frames=args.crop_frames, seed=args.seed,
        checkpoint_every=args.checkpoint_every, log_every=min(defaults.log_every, args.steps),
        holdout_fraction=args.holdout_fraction,
    )
    mel_config = MelConfig(n_mels=args.n_mels, time_expansion=time_expansion_from_args(args))
    model_config = VQVAEConfig(n_mels=args.n_mels, codes=args.codes, code_dim=args.code_dim, hidden=args.hidden,
                               cosine=args.cosine)
    dataset = dataset_from_args(args)
    result = train(dataset, _model_dir(args), model_config, train_config, mel_config, device=args.device,
                   resume=args.resume, show_progress=show_progress(args), num_workers=args.num_workers)
    print(result.line())
    return EXIT_OK


def _encode(args: argparse.Namespace) -> int:
    model_dir = _model_dir(args)
    tokenizer = VQVAETokenizer.from_pretrained(model_dir, device=_device(args))
    summary = encode_dataset(dataset_from_args(args), tokenizer, str(model_dir), overwrite=args.overwrite,
                             num_workers=args.num_workers, show_progress=show_progress(args))
    return report_summary(summary)


def _reconstruct(args: argparse.Namespace) -> int:
    model_dir = _model_dir(args)
    tokenizer = VQVAETokenizer.from_pretrained(model_dir, device=_device(args))
    dataset = dataset_from_args(args)
    matches = [item for item in dataset if args.file in (item.file_name, item.stem)]
    if not matches:
        raise BatError(f"{args.file!r} is not in {dataset.paths.annotations_csv}")
    one_file = Dataset(dataset.paths, matches[:1], dataset.label_columns)
    row = mel_rows(one_file, tokenizer.mel_config, show_progress=False)[matches[0].file_name]
    if row["status"] != "ok":
        raise BatError(f"cannot compute the mel spectrogram of {args.file}: {row['reason']}")
    mel = np.load(dataset.paths.derived / row["output_path"])
    codes = tokenizer.encode(mel)
    reconstruction = tokenizer.decode(codes, n_frames=mel.shape[1])
    out = Path(args.out) if args.out else dataset.paths.derived / "vqvae_reconstructions" / f"{matches[0].stem}.png"
    render_reconstruction(mel, reconstruction, codes, matches[0].file_name, out, row["frames_per_second"])
    print(f"reconstruction of {matches[0].file_name}: {out}")
    return EXIT_OK


def _device(args: argparse.Namespace) -> str:
    from bat_core.device import resolve_device

    return str(resolve_device(args.device))


def build_parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser(
        "bat-vqvae", __version__,
        "Learn a discrete codebook of bat acoustic units from your own recordings: a VQ-VAE on "
                    "log-mel spectrograms (bat-core mels, time-expanded), no pretrained weights, fully offline. "
                    "Typical use: `bat-vqvae train --root ROOT` then `bat-vqvae encode --root ROOT`.",
    )
    model_help = "model directory (config.json + model.safetensors; default: ROOT/derived/models/vqvae)"

    train_parser = add_command(commands,
        "train", help="train on random crops of the project's mels (computed if missing)",
        description="Train a VQ-VAE on random fixed-length crops of derived/mels_48k (computed first where "
                    "missing). The codebook starts from k-means over encoder outputs, is updated by EMA, and "
                    "codes unused for a while are restarted on data, so it does not collapse. Logs loss, "
                    "reconstruction error, codebook usage and perplexity to MODEL/train_log.csv (and TensorBoard "
                    "if installed); checkpoints in safetensors every --checkpoint-every steps; --resume continues.")
    add_common_arguments(train_parser, batch_size=TrainConfig().batch_size)
    defaults, model_defaults = TrainConfig(), VQVAEConfig()
    train_parser.add_argument("--model", default=None, help=model_help)
    train_parser.add_argument("--steps", type=int, default=defaults.steps, help=f"optimiser steps (default: {defaults.steps})")
    train_parser.add_argument("--lr", type=float, default=defaults.lr, help=f"Adam learning rate (default: {defaults.lr})")
    train_parser.add_argument("--crop-frames", type=int, default=defaults.crop_frames,
                              help=f"mel frames per training crop (default: {defaults.crop_frames})")
    train_parser.add_argument("--codes", type=int, default=model_defaults.codes, help=f"codebook size (default: {model_defaults.codes})")
    train_parser.add_argument("--code-dim", type=int, default=model_defaults.code_dim,
                              help=f"code vector size (default: {model_defaults.code_dim})")
    train_parser.add_argument("--hidden", type=int, default=model_defaults.hidden, help=f"hidden channels (default: {model_defaults.hidden})")
    train_parser.add_argument("--cosine", action="store_true", help="cosine (L2-normalised) codes")
    train_parser.add_argument("--n-mels", type=int, default=MelConfig().n_mels, help="mel bands (default: 128)")
    train_parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every,
                              help=f"steps between checkpoints (default: {defaults.checkpoint_every})")
    train_parser.add_argument("--holdout-fraction", type=float, default=defaults.holdout_fraction,
                              help=f"share of files held back to measure usage and reconstruction (default: {defaults.holdout_fraction})")
    train_parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in MODEL/checkpoints")
    add_time_expansion_arguments(train_parser)
    train_parser.set_defaults(handler=_train)

    encode_parser = add_command(commands,
        "encode", help="write codes per file to derived/tokens/vqvae/vqvae_<stem>.npy",
        description="Encode every selected file into int16 codes of shape (T', F') (row-major ravel gives the "
                    "flat token order) through the bat-core store: resumable, failures reported in the manifest "
                    "derived/manifests/vqvae.parquet with frames per second of original audio.")
    add_common_arguments(encode_parser, batch_size=None)
    encode_parser.add_argument("--model", default=None, help=model_help)
    encode_parser.set_defaults(handler=_encode)

    reconstruct_parser = add_command(commands,
        "reconstruct", help="render input vs reconstruction of one file as a PNG",
        description="Encode and decode one file and draw its log-mel, the reconstruction and the code grid.")
    add_common_arguments(reconstruct_parser, batch_size=None)
    reconstruct_parser.add_argument("file", help="a 'File Name' from annotations.csv (or its stem)")
    reconstruct_parser.add_argument("--model", default=None, help=model_help)
    reconstruct_parser.add_argument("--out", default=None, help="PNG path (default: derived/vqvae_reconstructions/<stem>.png)")
    reconstruct_parser.set_defaults(handler=_reconstruct)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
