"""``bat-hubert``: pretrain a HuBERT-style encoder on a project's own recordings.

Parses and prints; the work is in ``bat_hubert.pretrain``. Nothing heavy is imported before the
arguments are parsed, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    non_negative_int,
    positive_float,
    positive_int,
    run_options,
    selection_from_args,
    time_expansion_from_args,
)
from bat_hubert.__about__ import __version__
from bat_hubert.defaults import (
    BATCH_SIZE,
    CLUSTERS,
    CONV_CHANNELS,
    CROP_SECONDS,
    DEFAULT_MODEL_NAME,
    EPOCHS,
    FRONTEND_STEPS,
    HEADS,
    HIDDEN_SIZE,
    INTERMEDIATE_SIZE,
    ITERATIONS,
    LAYERS,
    LEARNING_RATE,
    MAX_CROPS,
    MIN_STEPS,
    TIME_EXPANSION,
)


def _pretrain(args: argparse.Namespace) -> int:
    from bat_core.device import resolve_device
    from bat_core.paths import ProjectPaths
    from bat_hubert.model import ModelSize
    from bat_hubert.pretrain import PretrainSettings, pretrain

    dataset = dataset_from_args(args)
    calls = selection_from_args(args, dataset.paths)  # checked before any work
    expansion = time_expansion_from_args(args)
    directory = Path(args.model) if args.model else ProjectPaths.for_root(args.root, args.derived).models_dir / DEFAULT_MODEL_NAME
    size = ModelSize(hidden_size=args.hidden_size, layers=args.layers, heads=args.heads,
                     intermediate_size=args.intermediate_size, conv_channels=args.conv_channels)
    settings = PretrainSettings(iterations=args.iterations, epochs=args.epochs, min_steps=args.min_steps, size=size,
                                clusters=tuple(args.clusters), crop_seconds=args.crop_seconds, max_crops=args.max_crops,
                                batch_size=args.batch_size, learning_rate=args.learning_rate, layer=args.target_layer,
                                frontend_steps=args.frontend_steps, seed=args.seed)

    def said(row) -> None:
        if not args.quiet:
            print(f"iteration {row.iteration} epoch {row.epoch + 1}/{row.epochs}: loss {row.train_loss:.3f}, "
                  f"held-back masked accuracy {row.held_accuracy:.3f} (chance {row.chance_accuracy:.3f}), "
                  f"{row.seconds:.0f} s", file=sys.stderr)

    result = pretrain(dataset, directory, settings, expansion, resolve_device(args.device), overwrite=args.overwrite,
                      resume=args.resume, label_column=args.label_column, options=run_options(args, "pretrain: crops"),
                      after_epoch=said, calls=calls, init=args.init)
    print(f"encoder saved in {result.directory} ({result.crops} crops of {len(dataset)} recordings; "
          f"log: {result.directory / 'pretrain_log.csv'})")
    print(f"tokenize with it: bat-w2v-kmeans run --root {args.root} --model {result.directory} --layer 0 --k 64 "
          f"(its time expansion and band are adopted from the folder)")
    if result.failures:
        print(f"{len(result.failures)} recording(s) could not be used:", file=sys.stderr)
        for name, reason in list(result.failures.items())[:20]:
            print(f"  {name}: {reason}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser("bat-hubert", __version__, "Pretrain a HuBERT-style self-supervised encoder on your "
                                  "own bat recordings; bat-w2v-kmeans --model DIR then tokenizes with it.")
    pretrain = add_command(commands, "pretrain", help="pretrain an encoder on the project's recordings",
                           description="Masked prediction of k-means units (log-mel frames, then a middle layer) on "
                                       "crops of the time-expanded recordings, after the convolutions have learnt to "
                                       "regress each frame's log-mel (iteration 0); saves a transformers HubertModel "
                                       "folder.")
    add_common_arguments(pretrain, batch_size=BATCH_SIZE, seed=True, shard_option=False, tag_option=False)
    add_time_expansion_arguments(pretrain, default=TIME_EXPANSION,
                                 why="an encoder learnt from scratch is not bound to a speech model's time scale, and "
                                     "its frames are 0.67 ms of the recording instead of 1.33 ms at auto's x15; "
                                     "bat-w2v-kmeans adopts the factor with the encoder")
    add_segments_arguments(pretrain)
    run = pretrain.add_argument_group("training")
    run.add_argument("--model", default=None, metavar="DIR",
                     help=f"where the encoder is saved (default: DERIVED/models/{DEFAULT_MODEL_NAME})")
    run.add_argument("--resume", action="store_true", help="continue a stopped run from its checkpoint in --model")
    run.add_argument("--init", default=None, metavar="DIR",
                     help="start from the weights of an encoder saved before (e.g. to go on pretraining on new "
                          "recordings) instead of random ones; the model size options must match it")
    run.add_argument("--iterations", type=positive_int, default=ITERATIONS,
                     help=f"HuBERT iterations: 1 = log-mel units, 2 = then a middle layer's units (default: {ITERATIONS})")
    run.add_argument("--epochs", type=positive_int, default=EPOCHS, help=f"epochs per iteration (default: {EPOCHS}), "
                     "raised on a small corpus to reach --min-steps")
    run.add_argument("--min-steps", type=non_negative_int, default=MIN_STEPS,
                     help=f"optimiser steps an iteration takes at least: --epochs is raised where the corpus is too "
                          f"small to give them (the 24-file demo at 3 epochs, 84 steps, learnt nothing; default: "
                          f"{MIN_STEPS}; 0: exactly --epochs)")
    run.add_argument("--frontend-steps", type=non_negative_int, default=FRONTEND_STEPS, metavar="N",
                     help="iteration 0: optimiser steps in which the convolutions learn to regress each frame's "
                          "log-mel before masked prediction starts (masked prediction alone left them no better than "
                          f"random ones at telling calls from background; default: {FRONTEND_STEPS}; 0: none; "
                          "skipped with --init)")
    run.add_argument("--clusters", type=positive_int, nargs="+", default=list(CLUSTERS), metavar="K",
                     help=f"k-means units per iteration, the last repeated (default: {' '.join(map(str, CLUSTERS))})")
    run.add_argument("--target-layer", type=positive_int, default=None,
                     help="layer clustered for iterations >= 2 (default: the middle one)")
    run.add_argument("--label-column", default=None,
                     help="annotation column the log's PNMI compares the units with (default: call_type when present)")
    run.add_argument("--learning-rate", type=positive_float, default=LEARNING_RATE, help=f"(default: {LEARNING_RATE:g})")
    run.add_argument("--crop-seconds", type=positive_float, default=CROP_SECONDS,
                     help=f"seconds of model audio per training crop (default: {CROP_SECONDS:g})")
    run.add_argument("--max-crops", type=positive_int, default=MAX_CROPS,
                     help=f"crops kept (a seeded choice when the corpus has more; default: {MAX_CROPS})")
    size = pretrain.add_argument_group("model size")
    size.add_argument("--hidden-size", type=positive_int, default=HIDDEN_SIZE, help=f"(default: {HIDDEN_SIZE})")
    size.add_argument("--layers", type=positive_int, default=LAYERS, help=f"transformer layers (default: {LAYERS})")
    size.add_argument("--heads", type=positive_int, default=HEADS, help=f"attention heads (default: {HEADS})")
    size.add_argument("--intermediate-size", type=positive_int, default=INTERMEDIATE_SIZE,
                      help=f"feed-forward width (default: {INTERMEDIATE_SIZE})")
    size.add_argument("--conv-channels", type=positive_int, default=CONV_CHANNELS,
                      help=f"channels of each of the 7 convolutions (default: {CONV_CHANNELS})")
    pretrain.set_defaults(handler=_pretrain)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
