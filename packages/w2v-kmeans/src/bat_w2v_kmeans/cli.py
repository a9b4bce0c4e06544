"""``bat-w2v-kmeans``: fit a k-means codebook on encoder frames, encode recordings into tokens."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bat_core.cli_common import (
    EXIT_OK,
    add_command,
    add_common_arguments,
    add_precision_argument,
    add_time_expansion_arguments,
    cli_main,
    cli_parser,
    dataset_from_args,
    report_summary,
    show_progress,
    time_expansion_from_args,
)
from bat_core.paths import ProjectPaths
from bat_w2v_kmeans.__about__ import __version__
from bat_w2v_kmeans.encode import FrameCache, encode_dataset
from bat_w2v_kmeans.encoder import DEFAULT_MODEL, WINDOW_SECONDS, SpeechEncoder
from bat_w2v_kmeans.tokenizer import W2VKMeansTokenizer

LAYER_HELP = (
    "hidden state to cluster: 'last' (default) or an index (0 = CNN features after projection, k = output of "
    "transformer layer k). An intermediate layer is often better: the last layers of a self-supervised speech "
    "model specialise in its pre-training target (masked prediction of speech units), while middle layers keep "
    "more general acoustic structure - HuBERT's own k-means units come from layer 6 of 12, then 9"
)


def _paths(args) -> ProjectPaths:
    return ProjectPaths.for_root(args.root, args.derived)


def _codebook_dir(args) -> Path:
    return Path(args.codebook) if args.codebook else _paths(args).models_dir / "w2v_kmeans"


def _layer(args) -> int | None:
    return None if args.layer in (None, "last") else int(args.layer)


def _encoder(args) -> SpeechEncoder:
    return SpeechEncoder.from_pretrained(args.model, layer=_layer(args), device=args.device,
                                         window_seconds=args.window_seconds, precision=args.precision)


def _fit(args, frame_sink=None) -> W2VKMeansTokenizer:
    tokenizer = W2VKMeansTokenizer(_encoder(args), time_expansion_from_args(args))
    codebook = tokenizer.fit(dataset_from_args(args), k=args.k, max_fit_frames=args.max_fit_frames, seed=args.seed,
                             batch_size=args.batch_size, num_workers=args.num_workers,
                             show_progress=show_progress(args), frame_sink=frame_sink)
    directory = tokenizer.save(_codebook_dir(args))
    info = codebook.info
    print(f"codebook: k={info.k} fitted on {info.fit_frames} of {info.frames_seen} frames "
          f"({info.extra['files']} files), inertia {info.inertia:.4g} ({info.inertia / info.fit_frames:.4g} per frame), "
          f"{info.extra['iterations']} Lloyd iterations -> {directory}")
    return tokenizer


def _fit_command(args) -> int:
    _fit(args)
    return EXIT_OK


def _encode(args, tokenizer: W2VKMeansTokenizer | None = None, frame_cache: Path | None = None) -> int:
    if tokenizer is None:
        # model, layer and time expansion default to the codebook's; any given must match it
        expansion = None if args.time_expansion is None else time_expansion_from_args(args)
        tokenizer = W2VKMeansTokenizer.from_pretrained(_codebook_dir(args), model=args.model, device=args.device,
                                                       layer=_layer(args), expansion=expansion,
                                                       window_seconds=args.window_seconds, precision=args.precision)
    summary = encode_dataset(dataset_from_args(args), tokenizer, dedup=args.dedup, overwrite=args.overwrite,
                             batch_size=args.batch_size, num_workers=args.num_workers,
                             show_progress=show_progress(args), frame_cache=frame_cache)
    return report_summary(summary)


def _run(args) -> int:
    cache = FrameCache(_paths(args).derived / "cache" / "w2v_kmeans_frames")
    try:
        tokenizer = _fit(args, frame_sink=cache)
        return _encode(args, tokenizer, cache.directory)
    finally:
        cache.remove()


def build_parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser(
        "bat-w2v-kmeans", __version__,
        "Bio-tokens: frames of a self-supervised speech encoder (wav2vec 2.0, HuBERT, WavLM) on "
                    "time-expanded bat recordings, clustered by k-means into integer token sequences. "
                    "`run` = `fit` then `encode`, with one encoder pass.",
    )
    descriptions = {
        "fit": "Stream every selected file through the encoder, keep a uniform sample of at most --max-fit-frames "
               "frames, fit k-means (k-means++ start, Lloyd on --device) and save the codebook with what it was made "
               "from (model, layer, time expansion, rates, k).",
        "encode": "Assign every frame of every selected file to its nearest centroid: int16 tokens in "
                  "derived/tokens/w2v_kmeans_<stem>.npy, one per encoder frame; the manifest "
                  "(derived/manifests/w2v_kmeans.parquet) gives frames per second of the original recording. "
                  "A codebook made with another model, layer or time expansion is refused. Resumable.",
        "run": "fit, then encode, reusing the frames of the fit pass (one encoder pass over the corpus).",
    }
    handlers = {"fit": _fit_command, "encode": _encode, "run": _run}
    for name, description in descriptions.items():
        command = add_command(commands, name, help=description.split(":")[0].split(".")[0], description=description)
        add_common_arguments(command, batch_size=8)
        add_precision_argument(command)
        command.add_argument("--model", default=None if name == "encode" else DEFAULT_MODEL,
                             help=f"Hugging Face name or local folder of a wav2vec2/HuBERT/WavLM checkpoint (default: "
                                  f"{'the codebook' + chr(39) + 's model' if name == 'encode' else DEFAULT_MODEL}); offline, "
                                  "download it elsewhere and pass --model PATH")
        command.add_argument("--layer", default=None if name == "encode" else "last", help=LAYER_HELP)
        command.add_argument("--codebook", default=None, help="codebook directory (default: ROOT/derived/models/w2v_kmeans)")
        command.add_argument("--window-seconds", type=float, default=WINDOW_SECONDS,
                             help="long recordings reach the encoder in windows of this many seconds of model audio, "
                                  "overlapping by 1 s, frames stitched back (default: %(default)g, about the longest crop "
                                  "wav2vec2 and HuBERT were pretrained on; longer windows cost memory and attention time)")
        if name in ("fit", "run"):
            command.add_argument("--k", type=int, default=128, help="codebook size (default: 128)")
            command.add_argument("--max-fit-frames", type=int, default=50_000,
                                 help="k-means is fitted on a uniform sample of at most this many frames (default: 50000)")
        if name in ("encode", "run"):
            command.add_argument("--dedup", action="store_true",
                                 help="also write run-length form w2v_kmeans_<stem>.runs.npy: (token, frames) rows")
        add_time_expansion_arguments(command)
        if name == "encode":
            command.set_defaults(time_expansion=None)  # the codebook's
        command.set_defaults(handler=handlers[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
