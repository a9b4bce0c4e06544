"""``bat-w2v-kmeans``: fit a k-means codebook on encoder frames, encode recordings into tokens.

Parses and prints; the work is in ``bat_w2v_kmeans.api`` / ``.encode``. Nothing heavy is imported
before the arguments are parsed, so ``--help`` answers at once.
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
    add_precision_argument,
    add_segments_arguments,
    add_time_expansion_arguments,
    cli_main,
    cli_parser,
    dataset_from_args,
    positive_float,
    positive_int,
    report_summary,
    run_options,
    selection_from_args,
    time_expansion_from_args,
)
from bat_w2v_kmeans.__about__ import __version__
from bat_w2v_kmeans.defaults import (
    DEFAULT_K,
    DEFAULT_MAX_FIT_FRAMES,
    DEFAULT_MODEL,
    OVERLAP_SECONDS,
    REPRESENTATION,
    SUPPORTED_MODEL_TYPES,
    WINDOW_SECONDS,
)

LAYER_HELP = (
    "hidden state to cluster: 'last' (default) or an index (0 = CNN features after projection, k = output of "
    "transformer layer k). An intermediate layer is often better: the last layers of a self-supervised speech "
    "model specialise in its pre-training target (masked prediction of speech units), while middle layers keep "
    "more general acoustic structure - HuBERT's own k-means units come from layer 6 of 12, then 9"
)
MAX_FAILED_SHOWN = 20


def _codebook_dir(args) -> Path:
    from bat_core.calls import per_call_tag
    from bat_core.paths import ProjectPaths, tagged

    if args.codebook:
        return Path(args.codebook)
    tag = per_call_tag(args.tag, per_call=args.segments is not None)
    return ProjectPaths.for_root(args.root, args.derived).models_dir / tagged(REPRESENTATION, tag)


def _calls(args, dataset):
    """--segments: the calls to encode, read and checked before the model loads."""
    return selection_from_args(args, dataset.paths)


def _layer(args) -> int | None:
    if args.layer in (None, "last"):
        return None
    try:
        return int(args.layer)
    except ValueError:
        from bat_core.errors import BatError

        raise BatError(f"--layer takes 'last' or a layer index, got {args.layer!r}") from None


def _encoder_options(args) -> dict:
    return {"window_seconds": args.window_seconds, "precision": args.precision, "batch_size": args.batch_size}


def _quiet_model_loading(args) -> None:
    """-q: no weight-loading bars from transformers either."""
    if getattr(args, "quiet", False):
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def _new_tokenizer(args):
    from bat_w2v_kmeans.encoder import SpeechEncoder
    from bat_w2v_kmeans.tokenizer import W2VKMeansTokenizer
    from bat_w2v_kmeans.trained_on import expansion_for_model

    _quiet_model_loading(args)
    expansion = expansion_for_model(args.model, time_expansion_from_args(args))  # before loading the model
    encoder = SpeechEncoder.from_pretrained(args.model, layer=_layer(args), device=args.device, **_encoder_options(args))
    return W2VKMeansTokenizer(encoder, expansion)


def _print_fit(codebook, directory: Path) -> int:
    """The fit's accounting (every file given: done or failed, and why) and what was made."""
    info = codebook.info
    for name, reason in info.failed_files[:MAX_FAILED_SHOWN]:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    if info.files_failed > MAX_FAILED_SHOWN:
        print(f"... and {info.files_failed - MAX_FAILED_SHOWN} more (see failed_files in {directory / 'config.json'})",
              file=sys.stderr)
    failed = ""
    if info.failed_files:
        names = ", ".join(name for name, _ in info.failed_files[:5])
        failed = f" ({names}{', ...' if info.files_failed > 5 else ''})"
    print(f"fit: {info.files_given} given, {info.files_done} done, {info.files_failed} failed{failed}")
    print(f"codebook: k={info.k} fitted on {info.fit_frames} of {info.frames_seen} frames, inertia {info.inertia:.4g} "
          f"({info.inertia / max(1, info.fit_frames):.4g} per frame), {info.extra.get('iterations')} Lloyd iterations "
          f"-> {directory}")
    return EXIT_SOME_FAILED if info.failed_files else EXIT_OK


def _fit(args) -> int:
    from bat_w2v_kmeans.api import fit_codebook, refuse_existing

    directory = _codebook_dir(args)
    refuse_existing(directory, args.overwrite)  # before loading the model
    dataset = dataset_from_args(args)
    calls = _calls(args, dataset)
    tokenizer = _new_tokenizer(args)
    tokenizer.calls = calls
    directory = fit_codebook(dataset, tokenizer, directory, k=args.k, max_fit_frames=args.max_fit_frames,
                             seed=args.seed, overwrite=args.overwrite, options=run_options(args, "fit"), tag=args.tag)
    return _print_fit(tokenizer.codebook, directory)


def _encode(args) -> int:
    from bat_w2v_kmeans.encode import encode_dataset
    from bat_w2v_kmeans.tokenizer import W2VKMeansTokenizer

    # model, layer and time expansion default to the codebook's; any given must match it
    expansion = None if args.time_expansion is None else time_expansion_from_args(args)
    dataset = dataset_from_args(args)
    calls = _calls(args, dataset)
    _quiet_model_loading(args)
    tokenizer = W2VKMeansTokenizer.from_pretrained(_codebook_dir(args), model=args.model, device=args.device,
                                                   layer=_layer(args), expansion=expansion, **_encoder_options(args))
    tokenizer.calls = calls
    summary = encode_dataset(dataset, tokenizer, dedup=args.dedup, overwrite=args.overwrite,
                             options=run_options(args, "encode"), shard=args.shard, tag=args.tag)
    return report_summary(summary)


def _run(args) -> int:
    from bat_core.errors import BatError
    from bat_w2v_kmeans.api import run_pipeline
    from bat_w2v_kmeans.codebook import exists

    directory = _codebook_dir(args)
    if args.shard is not None and not exists(directory):  # before loading the model
        raise BatError(f"run --shard {args.shard[0]}/{args.shard[1]} needs a codebook in {directory}, made first by "
                       "`bat-w2v-kmeans fit` over the whole dataset (fit does not shard); then run the shards")
    dataset = dataset_from_args(args)
    calls = _calls(args, dataset)
    tokenizer = _new_tokenizer(args)
    tokenizer.calls = calls
    result = run_pipeline(dataset, tokenizer, directory, k=args.k,
                          max_fit_frames=args.max_fit_frames, seed=args.seed, dedup=args.dedup, overwrite=args.overwrite,
                          options=run_options(args, "run"), shard=args.shard, tag=args.tag)
    if result.fitted:
        _print_fit(result.codebook, result.codebook_dir)
    else:
        print(f"codebook: {result.codebook_dir} (already there, made with these settings; not fitted again)")
    return report_summary(result.tokens)


def _add_model_arguments(command: argparse.ArgumentParser, name: str) -> None:
    model = command.add_argument_group("model")
    types = ", ".join(SUPPORTED_MODEL_TYPES)
    if name == "encode":
        model.add_argument("--model", default=None,
                           help=f"Hugging Face name or local folder of the encoder ({types}); default: the codebook's. "
                                "Offline: download it elsewhere and pass --model PATH")
        model.add_argument("--layer", default=None, help=LAYER_HELP + " (default: the codebook's)")
    else:
        model.add_argument("--model", default=DEFAULT_MODEL,
                           help=f"Hugging Face name or local folder of a {types} checkpoint (default: {DEFAULT_MODEL}). "
                                "Offline: download it elsewhere and pass --model PATH")
        model.add_argument("--layer", default="last", help=LAYER_HELP)
    model.add_argument("--codebook", default=None,
                       help=f"codebook directory (default: DERIVED/models/{REPRESENTATION}, or {REPRESENTATION}-TAG "
                            "with --tag)")
    default = "the codebook's" if name == "encode" else f"{WINDOW_SECONDS:g}"
    model.add_argument("--window-seconds", type=positive_float, default=None if name == "encode" else WINDOW_SECONDS,
                       help=f"recordings reach the encoder in windows of this many seconds of model audio, overlapping "
                            f"by {OVERLAP_SECONDS:g} s, each normalised on its own and its frames stitched back "
                            f"(default: {default}; {WINDOW_SECONDS:g} s is about the longest crop wav2vec2 and HuBERT "
                            "were pretrained on; longer windows cost memory and attention time)")
    add_precision_argument(model)


def build_parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser(
        "bat-w2v-kmeans", __version__,
        "Bio-tokens: frames of a self-supervised speech encoder (wav2vec 2.0, HuBERT, WavLM, data2vec-audio) on "
        "time-expanded bat recordings, clustered by k-means into integer token sequences. `run` = `fit` then "
        "`encode`, with one encoder pass.",
    )
    descriptions = {
        "fit": "Stream every selected file through the encoder, keep an order-free sample of at most "
               "--max-fit-frames frames, fit k-means (k-means++ start, Lloyd on --device) and save the codebook with "
               "what it was made from (model weights, layer, time expansion, windows, precision, k, the files that "
               "fed it and those that failed). An existing codebook is replaced only with --overwrite. Exit 1 when "
               "some files failed.",
        "encode": "Assign every frame of every selected file to its nearest centroid: int16 tokens in "
                  f"derived/tokens/{REPRESENTATION}_<stem>.npy, one per encoder frame; the manifest "
                  f"(derived/manifests/{REPRESENTATION}.parquet) gives frames per second of the original recording. "
                  "A codebook made with another model, layer or time expansion is refused. Resumable; tokens made "
                  "with another codebook or precision are redone.",
        "run": "fit, then encode, with one encoder pass: frames are cached under derived/cache/ while the codebook "
               "is fitted, tokens assigned from them, and the cache removed. A stopped run resumes from the cache. "
               "With --shard I/N the codebook must exist (made by `fit`): the shard is encoded with it.",
    }
    handlers = {"fit": _fit, "encode": _encode, "run": _run}
    for name, description in descriptions.items():
        command = add_command(commands, name, help=description.split(":")[0].split(".")[0].split(",")[0],
                              description=description)
        add_common_arguments(command, batch_size="auto", seed=name in ("fit", "run"),
                             shard_option=name != "fit")
        _add_model_arguments(command, name)
        if name in ("fit", "run"):
            command.add_argument("--k", type=positive_int, default=DEFAULT_K,
                                 help=f"codebook size (default: {DEFAULT_K})")
            command.add_argument("--max-fit-frames", type=positive_int, default=DEFAULT_MAX_FIT_FRAMES,
                                 help="k-means is fitted on a sample of at most this many frames, the same whatever the "
                                      f"file order or the number of workers (default: {DEFAULT_MAX_FIT_FRAMES})")
        if name in ("encode", "run"):
            command.add_argument("--dedup", action="store_true",
                                 help=f"also write the run-length form {REPRESENTATION}_<stem>.runs.npy: "
                                      "(token, frames) rows")
        add_time_expansion_arguments(command)
        add_segments_arguments(command)
        if name == "encode":
            command.set_defaults(time_expansion=None)  # the codebook's
        command.set_defaults(handler=handlers[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
