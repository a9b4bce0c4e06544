"""``bat-vqvae``: train a VQ-VAE on a project's mels, encode files into codes, render reconstructions.

Parses and prints; the library does the work. Nothing heavy is imported before a command runs
(``--help`` loads no numpy or torch).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bat_core.cli import MEL_DEFAULTS
from bat_core.cli_common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    add_command,
    add_common_arguments,
    add_segments_arguments,
    add_time_expansion_arguments,
    cli_main,
    cli_parser,
    dataset_from_args,
    fraction,
    positive_float,
    positive_int,
    report_summary,
    run_options,
    selection_from_args,
    time_expansion_from_args,
)
from bat_core.errors import BatError
from bat_core.paths import ProjectPaths
from bat_vqvae.__about__ import __version__
from bat_vqvae.config import CODE_LAYOUTS, QUANTIZERS, TrainConfig, VQVAEConfig
from bat_vqvae.device_recipe import CPU_RECIPE, GPU_RECIPE
from bat_vqvae.layout import default_model_dir, representation


def fsq_levels(text: str) -> tuple[int, ...]:
    """``8,5,5,5`` -> (8, 5, 5, 5)."""
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, e.g. 8,5,5,5; got {text!r}") from None
    if not levels or min(levels) < 2:
        raise argparse.ArgumentTypeError(f"each level must be >= 2, got {text!r}")
    return levels


def _model_dir(args: argparse.Namespace) -> Path:
    if args.model:
        return Path(args.model)
    return default_model_dir(ProjectPaths.for_root(args.root, args.derived), args.tag)


def _tokenizer(args: argparse.Namespace):
    from bat_core.device import resolve_device
    from bat_vqvae.artefact import VQVAETokenizer

    return VQVAETokenizer.from_pretrained(_model_dir(args), device=resolve_device(args.device))


def _train(args: argparse.Namespace) -> int:
    from bat_core.device import resolve_device
    from bat_core.mels import MelConfig
    from bat_vqvae.device_recipe import recipe_for, steps_for_crops
    from bat_vqvae.training import train

    recipe = recipe_for(resolve_device(args.device).type)
    batch_size = args.batch_size or recipe.batch_size
    steps = args.steps if args.crops is None else steps_for_crops(args.crops, batch_size)
    try:
        train_config = TrainConfig(
            steps=steps, batch_size=batch_size, lr=args.lr or recipe.lr,
            warmup_steps=recipe.warmup_steps, crop_frames=args.crop_frames, seed=args.seed,
            checkpoint_every=args.checkpoint_every, log_every=min(TrainConfig().log_every, steps),
            holdout_fraction=args.holdout_fraction,
        )
        model_config = VQVAEConfig(n_mels=args.n_mels, codes=args.codes, code_dim=args.code_dim, hidden=args.hidden,
                                   cosine=args.cosine, quantizer=args.quantizer, fsq_levels=args.fsq_levels,
                                   rvq_depth=args.rvq_depth,
                                   code_layout=args.code_layout)
        mel_config = MelConfig(n_mels=args.n_mels, time_expansion=time_expansion_from_args(args))
    except ValueError as error:
        raise BatError(f"bad option: {error}") from error
    result = train(dataset_from_args(args), _model_dir(args), model_config, train_config, mel_config,
                   device=args.device, resume=args.resume, overwrite=args.overwrite, options=run_options(args))
    for name, reason in sorted(result.failed.items()):
        print(f"failed: {name}: {reason}", file=sys.stderr)
    print(result.line())
    return EXIT_SOME_FAILED if result.failed else EXIT_OK


def _encode(args: argparse.Namespace) -> int:
    from bat_vqvae.encode import encode_dataset

    dataset = dataset_from_args(args)
    calls = selection_from_args(args, dataset.paths)  # checked before the model loads
    tokenizer = _tokenizer(args)
    summary = encode_dataset(dataset, tokenizer, str(_model_dir(args)), overwrite=args.overwrite,
                             options=run_options(args), shard=args.shard, tag=args.tag, calls=calls)
    return report_summary(summary)


def _reconstruct(args: argparse.Namespace) -> int:
    from bat_vqvae.reconstruct import reconstruct_file

    tokenizer = _tokenizer(args)
    result = reconstruct_file(dataset_from_args(args), args.file, tokenizer, args.out, tag=args.tag,
                              options=run_options(args))
    print(result.line())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser(
        "bat-vqvae", __version__,
        "Learn a discrete codebook of bat acoustic units from your own recordings: a VQ-VAE on log-mel spectrograms "
        "(bat-core mels, time-expanded), no pretrained weights, fully offline. Typical use: `bat-vqvae train --root "
        "ROOT` then `bat-vqvae encode --root ROOT`.",
    )
    model_help = ("model directory (config.json + model.safetensors; default: ROOT/derived/models/vqvae, or "
                  "vqvae-NAME with --tag NAME)")

    train_parser = add_command(
        commands, "train", help="train on random crops of the project's mels (computed if missing)",
        description="Train a VQ-VAE on random fixed-length crops of the project's mels (computed first where missing, "
                    "into derived/mels_48k or the folder of these mel settings). The codebook starts from k-means over "
                    "encoder outputs, is updated by EMA, and codes unused for a while are restarted on data, so it "
                    "does not collapse. Logs loss, reconstruction error, codebook usage and perplexity to "
                    "MODEL/train_log.csv (and TensorBoard if installed); checkpoints in safetensors every "
                    "--checkpoint-every steps; --resume continues. Files that cannot be used are listed, and named in "
                    "MODEL/config.json (exit 1); a non-finite loss stops training naming the files that fed it. An "
                    "existing model is replaced only with --overwrite.")
    add_common_arguments(train_parser, batch_size=None, seed=True, shard_option=False)
    defaults, model_defaults = TrainConfig(), VQVAEConfig()
    train_parser.add_argument("--batch-size", type=positive_int, default=None,
                              help=f"crops per step (default: by device: {CPU_RECIPE.batch_size} on CPU, "
                                   f"{GPU_RECIPE.batch_size} on a CUDA GPU with a {GPU_RECIPE.warmup_steps}-step "
                                   "learning-rate warm-up)")
    train_parser.add_argument("--model", default=None, help=model_help)
    length = train_parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, default=defaults.steps,
                        help=f"optimiser steps (default: {defaults.steps})")
    length.add_argument("--crops", type=positive_int, default=None,
                        help="train until this many crops are seen (steps = crops / batch size, rounded up): the same "
                             "length on any device's batch")
    train_parser.add_argument("--lr", type=positive_float, default=None,
                              help=f"Adam learning rate (default: by device: {CPU_RECIPE.lr} on CPU, {GPU_RECIPE.lr} on "
                                   "a CUDA GPU)")
    train_parser.add_argument("--crop-frames", type=positive_int, default=defaults.crop_frames,
                              help=f"mel frames per training crop (default: {defaults.crop_frames})")
    train_parser.add_argument("--codes", type=positive_int, default=model_defaults.codes,
                              help=f"codebook size (default: {model_defaults.codes})")
    train_parser.add_argument("--code-dim", type=positive_int, default=model_defaults.code_dim,
                              help=f"code vector size (default: {model_defaults.code_dim})")
    train_parser.add_argument("--hidden", type=positive_int, default=model_defaults.hidden,
                              help=f"hidden channels (default: {model_defaults.hidden})")
    train_parser.add_argument("--cosine", action="store_true", help="cosine (L2-normalised) codes (ema quantizer)")
    train_parser.add_argument("--quantizer", choices=QUANTIZERS, default=model_defaults.quantizer,
                              help="ema: a learnt codebook (k-means start, EMA updates, dead codes restarted; "
                                   "--codes sets its size); fsq: finite scalar quantisation, no codebook to collapse "
                                   "(--fsq-levels sets its size); rvq: residual VQ, --rvq-depth such codebooks of "
                                   f"--codes each, one index per level (default: {model_defaults.quantizer})")
    train_parser.add_argument("--rvq-depth", type=positive_int, default=model_defaults.rvq_depth,
                              help="rvq: codebooks (levels); saved codes get a trailing axis of this many indices "
                                   f"(default: {model_defaults.rvq_depth})")
    train_parser.add_argument("--fsq-levels", type=fsq_levels, default=model_defaults.fsq_levels, metavar="L1,L2,..",
                              help="fsq: values per dimension; codes = their product (default: "
                                   f"{','.join(map(str, model_defaults.fsq_levels))} = "
                                   f"{VQVAEConfig(quantizer='fsq').codes} codes)")
    train_parser.add_argument("--code-layout", choices=CODE_LAYOUTS, default=model_defaults.code_layout,
                              help="grid: codes (T', F'), one per time-frequency cell; time: one code per time step "
                                   "(T',), the frequency axis folded into it, a 1-D token stream (default: "
                                   f"{model_defaults.code_layout})")
    train_parser.add_argument("--n-mels", type=positive_int, default=MEL_DEFAULTS["n_mels"],
                              help=f"mel bands (default: {MEL_DEFAULTS['n_mels']})")
    train_parser.add_argument("--checkpoint-every", type=positive_int, default=defaults.checkpoint_every,
                              help=f"steps between checkpoints (default: {defaults.checkpoint_every})")
    train_parser.add_argument("--holdout-fraction", type=fraction, default=defaults.holdout_fraction,
                              help="share of files held back to measure usage and reconstruction (default: "
                                   f"{defaults.holdout_fraction})")
    train_parser.add_argument("--resume", action="store_true",
                              help="continue from the latest checkpoint in MODEL/checkpoints; refused when its data, "
                                   "mel, time-expansion, model or training settings differ")
    add_time_expansion_arguments(train_parser)
    train_parser.set_defaults(handler=_train)

    encode_parser = add_command(
        commands, "encode", help="write codes per file to derived/tokens/vqvae/vqvae_<stem>.npy",
        description="Encode every selected recording into int16 codes of shape (T', F') (row-major ravel gives the "
                    "flat token order), or (T',) for a model trained with --code-layout time, streamed from the "
                    "audio through the bat-core runner (no mels needed first): "
                    "resumable, failures reported in the manifest derived/manifests/vqvae.parquet with frames per "
                    f"second of original audio. --tag NAME writes {representation('NAME')} beside the default.")
    add_common_arguments(encode_parser, batch_size=None)
    encode_parser.add_argument("--model", default=None, help=model_help)
    add_segments_arguments(encode_parser)
    encode_parser.set_defaults(handler=_encode)

    reconstruct_parser = add_command(
        commands, "reconstruct", help="render input vs reconstruction of one file as a PNG (needs bat-vqvae[plot])",
        description="Encode and decode one file and draw its log-mel, the reconstruction and the code grid.")
    add_common_arguments(reconstruct_parser, batch_size=None, overwrite=False, shard_option=False, workers_option=False)
    reconstruct_parser.add_argument("file", help="a 'File Name' from annotations.csv (or its stem)")
    reconstruct_parser.add_argument("--model", default=None, help=model_help)
    reconstruct_parser.add_argument("--out", default=None,
                                    help="PNG path (default: derived/vqvae_reconstructions/<stem>.png)")
    reconstruct_parser.set_defaults(handler=_reconstruct)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
