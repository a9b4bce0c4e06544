"""``bat-ast-embed``: Audio Spectrogram Transformer embeddings per recording."""

from __future__ import annotations

import argparse
import sys

from bat_ast_embed.__about__ import __version__
from bat_ast_embed.defaults import DEFAULT_MODEL, POOLS
from bat_core.cli_common import (
    add_command,
    add_common_arguments,
    add_precision_argument,
    add_segments_arguments,
    add_time_expansion_arguments,
    cli_main,
    cli_parser,
    dataset_from_args,
    positive_int,
    report_summary,
    run_options,
    selection_from_args,
    time_expansion_from_args,
)
from bat_core.errors import BatError

LENGTH_HELP = (
    "input length in filterbank frames (10 ms of model audio each). Default: the checkpoint's trained length "
    "(1024 for AudioSet ASTs): every clip padded to it, exactly as the model was trained; slow for short clips. "
    "'auto': each clip runs at the length it needs, rounded up to --bucket-frames, with the position embeddings "
    "cropped to match (the positions the model saw for the start of a padded clip) - several times faster on "
    "short clips, embeddings close to but not identical with the padded ones (see BENCHMARKS.md). An integer: "
    "that length (position embeddings cropped, or interpolated above the trained length). Recordings longer than "
    "the length in force are embedded in windows and the window embeddings averaged, weighted by duration."
)


def _max_frames(text: str | None) -> int | str | None:
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError as error:
        raise BatError(f"--max-frames takes 'auto' or an integer, got {text!r}") from error


def _embed(args: argparse.Namespace) -> int:
    """Parse, load, run, print: the work is ``embed_dataset``'s."""
    from bat_ast_embed.config import EmbedConfig
    from bat_ast_embed.embed import embed_dataset
    from bat_ast_embed.embedder import ASTEmbedder

    try:
        config = EmbedConfig(model=args.model, max_frames=_max_frames(args.max_frames), bucket_frames=args.bucket_frames,
                             pool=args.pool, layer=args.layer, sequence=args.sequence,
                             time_expansion=time_expansion_from_args(args))
    except ValueError as error:
        raise BatError(str(error)) from error
    dataset = dataset_from_args(args)
    calls = selection_from_args(args, dataset.paths)  # checked before the model loads
    if calls is not None and args.sequence:
        raise BatError("--sequence is for whole recordings; per call (--segments) each call gives one embedding")
    try:
        embedder = ASTEmbedder.from_pretrained(config=config, device=args.device, precision=args.precision)
    except ValueError as error:
        raise BatError(str(error)) from error
    summary = embed_dataset(dataset, embedder, batch_size=args.batch_size, overwrite=args.overwrite,
                            options=run_options(args, "embed"), shard=args.shard, tag=args.tag, calls=calls)
    return report_summary(summary)


def build_parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser(
        "bat-ast-embed", __version__,
        "Continuous embeddings of bat recordings from an Audio Spectrogram Transformer. Each "
                    "recording is time-expanded (bat-core) and resampled to the checkpoint's rate, then turned "
                    "into the checkpoint's own filterbank (its feature extractor's filters and statistics), so the "
                    "model sees what it was trained on.",
    )
    embed = add_command(commands,
        "embed", help="write one embedding per file to derived/ast_features/ast_<stem>.npy",
        description="Embed every selected file through the bat-core runner and store: recordings streamed in "
                    "blocks by worker processes (memory does not grow with a file's length), resumable, failures "
                    "reported in derived/manifests/ast.parquet (with --tag NAME: ast-NAME.parquet, outputs in "
                    "derived/ast_features/ast-NAME/). Outputs made with other settings, weights or precision are "
                    "redone. Output: float32 (hidden,) per file; with --pool both also "
                    "ast_<stem>.mean.npy; with --sequence also ast_<stem>.sequence.npy, the patch tokens averaged "
                    "over frequency, (time patches, hidden), 10 steps per second of model audio (x time expansion "
                    "per second of the original recording).")
    add_common_arguments(embed, batch_size=8)
    add_precision_argument(embed)
    embed.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"Hugging Face name or local folder (save_pretrained) of an AST checkpoint (default: {DEFAULT_MODEL}); "
                            "offline, download it elsewhere and pass --model PATH")
    embed.add_argument("--max-frames", default=None, metavar="auto|N", help=LENGTH_HELP)
    embed.add_argument("--bucket-frames", type=positive_int, default=64, help="auto mode rounds lengths up to a multiple of this (default: 64)")
    embed.add_argument("--pool", choices=POOLS, default="pooler",
                       help="pooler: the model's pooler output ((CLS + distillation)/2); mean: mean of the valid patch "
                            "tokens; both: pooler in ast_<stem>.npy and the mean in ast_<stem>.mean.npy (default: pooler)")
    embed.add_argument("--layer", type=int, default=-1,
                       help="hidden state to pool: -1 the last layer (default), 0 the embeddings, k the output of layer k; "
                            "the final layer norm is applied to all")
    embed.add_argument("--sequence", action="store_true", help="also save the patch-token sequence for sequence models")
    add_time_expansion_arguments(embed)
    add_segments_arguments(embed)
    embed.set_defaults(handler=_embed)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
