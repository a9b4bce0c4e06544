"""``bat-core``: demo corpus, dataset check and mel spectrograms."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bat_core.__about__ import __version__
from bat_core.cli_common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    add_command,
    add_common_arguments,
    add_time_expansion_arguments,
    cli_main,
    cli_parser,
    dataset_from_args,
    non_negative_int,
    positive_float,
    positive_int,
    report_summary,
    run_options,
    time_expansion_from_args,
)

# Mel defaults, written here so that --help needs no numpy (bat_core.mels.MelConfig holds the same values).
MEL_DEFAULTS = {"sample_rate": 48_000, "n_fft": 1024, "hop_length": 256, "n_mels": 128, "fmin": 500.0}


def _demo(args: argparse.Namespace) -> int:
    from bat_core.demo import write_demo_corpus

    root = write_demo_corpus(args.root_dir, n_files=args.files, seed=args.seed, overwrite=args.overwrite)
    print(f"demo corpus: {args.files} files -> {Path(root).resolve() / 'data'}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from bat_core.check import check_dataset

    dataset = dataset_from_args(args)
    report = check_dataset(dataset, run_options(args, "check"))
    print(report.text())
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(report.as_records(), indent=2))
        except OSError as error:
            from bat_core.errors import OutputError

            raise OutputError(f"cannot write the per-file report to {args.json}: {error.strerror or error}") from error
        print(f"per-file report: {args.json}")
    return EXIT_SOME_FAILED if report.problems else EXIT_OK


def _mels(args: argparse.Namespace) -> int:
    from bat_core.errors import DatasetError
    from bat_core.mels import MelConfig, compute_mels

    expansion = time_expansion_from_args(args)
    try:
        config = MelConfig(sample_rate=args.sample_rate, n_fft=args.n_fft, hop_length=args.hop_length,
                           n_mels=args.n_mels, fmin=args.fmin, fmax=args.fmax, time_expansion=expansion)
    except ValueError as error:
        raise DatasetError(f"mel settings: {error}") from error
    dataset = dataset_from_args(args)
    summary = compute_mels(dataset, config, overwrite=args.overwrite, options=run_options(args, "mels"), shard=args.shard)
    return report_summary(summary)


def _evaluate(args: argparse.Namespace) -> int:
    from bat_core.evaluate import evaluate_project  # scikit-learn and matplotlib: only when evaluating

    dataset = dataset_from_args(args)
    label = args.label
    if label is None and "call_type" in dataset.label_columns:
        label = "call_type"
    report = evaluate_project(dataset, label, args.group, out_dir=Path(args.out) if args.out else None,
                              examples=args.examples, seed=args.seed, notes=args.note, options=run_options(args, "mels"))
    for row in report.rows:
        accuracy = row.get("probe_accuracy")
        shown = f"{accuracy:.3f} ± {row.get('probe_accuracy_std'):.3f}" if accuracy == accuracy else "-"
        print(f"{row['name']:14s} {row['kind']:10s} probe accuracy {shown:15s} NMI {row.get('nmi', float('nan')):.3f}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"report: {report.markdown} (+ report.json, {len(report.figures)} figures)")
    print(report.line())
    return EXIT_SOME_FAILED if any(report.incomplete.values()) else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser, commands = cli_parser(
        "bat-core", __version__,
        "Shared tools of bat-tokenizers: a synthetic demo corpus, a dataset report, "
                    "log-mel spectrograms of time-expanded bat recordings, and the evaluation report that compares every representation.",
    )

    demo = add_command(commands, "demo", help="write the synthetic demo corpus to ROOT",
                               description="Write a deterministic synthetic corpus of labelled bat-like calls "
                                           "(FM, CF-FM, QCF; 192-384 kHz) to ROOT/data.")
    demo.add_argument("root_dir", metavar="ROOT", help="project root to create")
    demo.add_argument("--files", type=positive_int, default=24, help="number of recordings (default: 24)")
    demo.add_argument("--seed", type=int, default=0, help="seed; the same seed writes the same corpus")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing data/annotations.csv in ROOT")
    demo.set_defaults(handler=_demo)

    check = add_command(commands, "check", help="report files, rates, durations, channels, band coverage, problems",
                                description="Read every selected recording and report what the dataset holds "
                                            "and what is wrong with it. Exit 1 if some files cannot be read.")
    add_common_arguments(check, device=False, batch_size=None, overwrite=False, shard_option=False, tag_option=False)
    check.add_argument("--json", default=None, help="also write the per-file report as JSON to this path")
    check.set_defaults(handler=_check)

    mels = add_command(commands, "mels", help="write log-mel spectrograms to derived/mels_48k/<stem>.npy",
                               description="Compute float32 log-mel spectrograms (n_mels, T) of time-expanded "
                                           "recordings, streamed in blocks (memory does not grow with a file's length), "
                                           "through the representation store (resumable; the manifest records every "
                                           "file and what was done to its signal). The default settings write "
                                           "derived/mels_48k; any other settings write their own folder "
                                           "derived/mels_<rate>-<config hash>, so configurations never overwrite "
                                           "each other.")
    add_common_arguments(mels, device=False, batch_size=None, tag_option=False)
    defaults = MEL_DEFAULTS
    mels.add_argument("--sample-rate", type=positive_int, default=defaults["sample_rate"], help="mel sample rate in Hz (default: 48000)")
    mels.add_argument("--n-fft", type=positive_int, default=defaults["n_fft"], help=f"FFT size (default: {defaults['n_fft']})")
    mels.add_argument("--hop-length", type=positive_int, default=defaults["hop_length"],
                      help=f"hop in samples (default: {defaults['hop_length']})")
    mels.add_argument("--n-mels", type=positive_int, default=defaults["n_mels"], help=f"mel bands (default: {defaults['n_mels']})")
    mels.add_argument("--fmin", type=float, default=defaults["fmin"],
                      help=f"lowest mel frequency, Hz after expansion (default: {defaults['fmin']:g})")
    mels.add_argument("--fmax", type=positive_float, default=None, help="highest mel frequency, Hz after expansion (default: Nyquist)")
    add_time_expansion_arguments(mels)
    mels.set_defaults(handler=_mels)

    evaluate = add_command(commands,
        "evaluate", help="compare every representation written so far against baselines: derived/report/",
        description="Read every representation in derived/manifests (whichever strategies have run), compute token "
                    "statistics (codes used, perplexity, entropy, tokens per second, mean run length, coverage), "
                    "probe a label column with cross-validated logistic regression (folds never split a --group) and "
                    "k-means NMI/purity, do the same for baselines (majority class, MFCC + k-means tokens, mean "
                    "log-mel), and write derived/report/report.md, report.json and PNG figures.")
    add_common_arguments(evaluate, device=False, batch_size=None, seed=True, overwrite=False, shard_option=False,
                         tag_option=False)
    evaluate.add_argument("--label", default=None, help="label column to probe (default: call_type when present)")
    evaluate.add_argument("--group", default=None, help="column whose groups (site, recording session) a fold never splits")
    evaluate.add_argument("--examples", type=non_negative_int, default=3, help="example files drawn with their tokens (default: 3)")
    evaluate.add_argument("--out", default=None, help="report folder (default: DERIVED/report)")
    evaluate.add_argument("--note", action="append", default=[], help="a sentence to state in the report (repeatable)")
    evaluate.set_defaults(handler=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
