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
    bounded_float,
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

# Detector defaults, written here so that --help needs no numpy (bat_core.segments.DetectorParams holds the same values).
SEGMENT_DEFAULTS = {"band": (15_000.0, 120_000.0), "high_db": 13.0, "low_db": 10.0, "min_ms": 1.0, "max_ms": 80.0,
                    "merge_ms": 3.0, "echo_db": 8.0, "max_calls_per_second": 250}
# ... and its bounds (MAX_DB, MAX_MS, MAX_HZ there), so a NaN, infinite or absurd setting is refused at parse time.
SEGMENT_LIMITS = {"db": 150.0, "ms": 60_000.0, "hz": 10e6}

# batdetect2 defaults (bat_core.segments.batdetect2 holds the same values; importing it needs no torch).
BATDETECT2_DEFAULTS = {"detection_threshold": 0.3, "max_seconds": 600.0}
MAX_SECONDS_LIMIT = 1e6  # --max-seconds: 11 days, far past any recording

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


def band_range(text: str) -> tuple[float, float]:
    """``LOW-HIGH`` in Hz (``15000-120000``)."""
    import argparse

    low, sep, high = text.partition("-")
    try:
        band = (float(low), float(high))
    except ValueError:
        band = None
    if not sep or band is None or not 0 <= band[0] < band[1] <= SEGMENT_LIMITS["hz"]:
        raise argparse.ArgumentTypeError(f"takes LOW-HIGH in Hz with 0 <= LOW < HIGH <= {SEGMENT_LIMITS['hz']:g} "
                                         f"(e.g. 15000-120000), got {text!r}")
    return band


def _segment_detector(args: argparse.Namespace):
    """``--detector`` and its settings as the object ``segment_project`` runs."""
    from bat_core.errors import DatasetError

    try:
        if args.detector == "batdetect2":
            from bat_core.segments.batdetect2 import Batdetect2Detector, Batdetect2Params

            return Batdetect2Detector(Batdetect2Params(detection_threshold=args.detection_threshold,
                                                       max_seconds=args.max_seconds))
        from bat_core.segments import DetectorParams

        return DetectorParams(band_low_hz=args.band[0], band_high_hz=args.band[1], high_db=args.high_db,
                              low_db=args.low_db, min_ms=args.min_ms, max_ms=args.max_ms, merge_ms=args.merge_ms,
                              echo_db=args.echo_db, max_calls_per_second=args.max_calls_per_second)
    except ValueError as error:
        raise DatasetError(f"detector settings: {error}") from error


def _segment(args: argparse.Namespace) -> int:
    from bat_core.errors import DatasetError
    from bat_core.segments.command import segment_project

    params = _segment_detector(args)
    if args.scored_files and not args.evaluate:
        raise DatasetError("--scored-files needs --evaluate CALLS.csv: it names more files to score against those boxes")
    scored = None
    if args.evaluate:  # before any work: a missing or broken reference should not wait for the whole run to be said
        from bat_core.segments.scoring import assignment_solver
        from bat_core.segments.table import read_boxes

        assignment_solver()
        read_boxes(args.evaluate)
        scored = _read_names(args.scored_files) if args.scored_files else None
    dataset = dataset_from_args(args)
    summary = segment_project(dataset, params, overwrite=args.overwrite, options=run_options(args, "segment"),
                              shard=args.shard)
    code = report_summary(summary.run)
    print(f"segment: {summary.n_calls} calls in {summary.seconds:.1f} s of audio ({100 * summary.kept_share:.2f}% of "
          f"it in calls) -> {summary.table_path}")
    if args.evaluate:
        from bat_core.segments.command import score_segments

        scores, unscored = score_segments(dataset, params, args.evaluate, scored)
        scored_count = len(scores.per_file)
        print(f"against {args.evaluate} ({scored_count} file(s) scored, {int(scores.per_file.references.sum())} "
              f"reference boxes): {scores.line()}")
        if unscored:
            print(f"not scored (no ok row: failed or not run): {len(unscored)} file(s): {', '.join(unscored[:5])}")
        if scored_count == 0:
            print("no selected file is named in the reference boxes (or in --scored-files): nothing was scored")
            return max(code, 1)
    return code


def _read_names(path: str) -> list[str]:
    from bat_core.errors import DatasetError

    try:
        return [line.strip() for line in open(path, encoding="utf-8") if line.strip()]
    except OSError as error:
        raise DatasetError(f"--scored-files {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise DatasetError(f"--scored-files {path}: not UTF-8 text (one File Name per line): {error}") from error


def _evaluate(args: argparse.Namespace) -> int:
    from bat_core.evaluate import TokenFeatures, evaluate_project  # scikit-learn and matplotlib: only when evaluating

    dataset = dataset_from_args(args)
    label = args.label
    if label is None and "call_type" in dataset.label_columns:
        label = "call_type"
    report = evaluate_project(dataset, label, args.group, out_dir=Path(args.out) if args.out else None,
                              examples=args.examples, seed=args.seed, notes=args.note, options=run_options(args, "mels"),
                              features=TokenFeatures(ngrams=args.ngrams), calls=args.calls)
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

    segment = add_command(commands, "segment", help="detect bat calls: derived/segments/<detector>-<hash>.parquet",
                          description="Detect bat calls on each recording, by default (--detector band_energy) with a "
                                      "dependency-free band-energy detector at its own rate (no resampling, no time expansion): "
                                      "1 ms FFT frames, a per-bin noise floor (running median over 3 s), hysteresis thresholds over that floor "
                                      "within --band. Streamed in blocks (memory does not grow with a file's length), "
                                      "resumable, one manifest row per file (n_calls in its extra column; a file "
                                      "without calls is ok with 0). Calls of all files go to "
                                      "derived/segments/band_energy-<config hash>.parquet with the columns of "
                                      "calls.csv (File Name, call_index, start_time_s, end_time_s, low_freq_hz, "
                                      "high_freq_hz) plus peak_freq_hz, score (peak SNR, dB) and the detector's name, "
                                      "version and config hash; other settings write their own table. Times are "
                                      "seconds of the original recording. --detector batdetect2 runs batdetect2's trained "
                                      "U-Net instead (optional extra; score = its det_prob, no peak frequency) into "
                                      "derived/segments/batdetect2-<config hash>.parquet.")
    add_common_arguments(segment, device=False, batch_size=None, tag_option=False)
    segment.add_argument("--detector", choices=("band_energy", "batdetect2"), default="band_energy",
                         help="band_energy (default: no dependencies, streamed) or batdetect2 (a trained U-Net; needs "
                              "pip install 'bat-core[batdetect2]' then pip install --no-deps batdetect2==1.3.1; its "
                              "weights are CC BY-NC 4.0, non-commercial): its boxes go to "
                              "derived/segments/batdetect2-<config hash>.parquet, beside the band-energy ones")
    b = BATDETECT2_DEFAULTS
    trained = segment.add_argument_group("batdetect2 (with --detector batdetect2)")
    trained.add_argument("--detection-threshold", type=bounded_float(0.0, 1.0), default=b["detection_threshold"],
                         help=f"keep boxes whose det_prob reaches this (default: {b['detection_threshold']:g}, the threshold of "
                              "batdetect2's README and of shared/bats/calls.csv; its API default 0.01 keeps noise)")
    trained.add_argument("--max-seconds", type=bounded_float(0.0, MAX_SECONDS_LIMIT, above_low=True), default=b["max_seconds"],
                         help=f"longer files are failed rows: batdetect2 decodes a whole file and a 256 kHz copy in memory "
                              f"(default: {b['max_seconds']:g})")
    detector = segment.add_argument_group("band-energy detector (defaults measured on synthetic calls in noise and on shared/bats)")
    d = SEGMENT_DEFAULTS
    decibels = bounded_float(0.0, SEGMENT_LIMITS["db"], above_low=True)
    milliseconds = bounded_float(0.0, SEGMENT_LIMITS["ms"])
    detector.add_argument("--band", type=band_range, default=d["band"], metavar="LOW-HIGH",
                          help="band searched, Hz, clipped at each file's Nyquist (default: 15000-120000, where bat "
                               "calls are; the manifest records a cut band)")
    detector.add_argument("--high-db", type=decibels, default=d["high_db"],
                          help=f"a call reaches this far over the noise floor somewhere (default: {d['high_db']:g}; "
                               "pure pink noise peaks near 11.5 dB in 30 s, so fewer is false alarms)")
    detector.add_argument("--low-db", type=decibels, default=d["low_db"],
                          help=f"a call extends while this far over the floor (default: {d['low_db']:g}; lower lets "
                               "noise frames stretch calls)")
    detector.add_argument("--min-ms", type=milliseconds, default=d["min_ms"],
                          help=f"shorter events, to the nearest frame, are dropped (default: {d['min_ms']:g}, one frame)")
    detector.add_argument("--max-ms", type=bounded_float(0.0, SEGMENT_LIMITS["ms"], above_low=True), default=d["max_ms"],
                          help=f"longer events are split (default: {d['max_ms']:g}: long CF calls fit)")
    detector.add_argument("--merge-ms", type=milliseconds, default=d["merge_ms"],
                          help=f"a call closer than this behind another, and --echo-db weaker, is its echo and joins its "
                               f"box (default: {d['merge_ms']:g}; 5 and 8 agreed less with batdetect2 on shared/bats)")
    detector.add_argument("--echo-db", type=bounded_float(0.0, SEGMENT_LIMITS["db"]), default=d["echo_db"],
                          help=f"how much weaker than a call a later one within --merge-ms must be to be its echo "
                               f"(default: {d['echo_db']:g}; echoes are ~10-20 dB weaker, the calls of a feeding buzz "
                               "alike, so they stay apart)")
    detector.add_argument("--max-calls-per-second", type=positive_int, default=d["max_calls_per_second"],
                          help=f"at most this many calls (the strongest) per second of audio (default: "
                               f"{d['max_calls_per_second']}: a feeding buzz reaches ~200/s)")
    scoring = segment.add_argument_group("scoring against reference boxes (needs bat-core[evaluate] for scipy)")
    scoring.add_argument("--evaluate", metavar="CALLS.csv", default=None,
                         help="after the run, match this configuration's calls one to one (Hungarian) to reference "
                              "boxes in the layout of calls.csv (File Name, start_time_s, end_time_s, ...) and print "
                              "precision, recall and F1 at onset within 10 ms and at time-IoU >= 0.5, the share of "
                              "reference call time covered and of audio kept. Scored: the selected files named in it")
    scoring.add_argument("--scored-files", metavar="NAMES.txt", default=None,
                         help="with --evaluate: more files to score, one File Name per line, known to hold no call "
                              "(their detections count as false positives)")
    segment.set_defaults(handler=_segment)

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
    evaluate.add_argument("--group", default=None,
                          help="column whose groups (site, night, recording session) a fold never splits; a class with "
                               "fewer than two groups makes the probe undefined (it would measure the group). "
                               "Default: every file is its own group")
    evaluate.add_argument("--calls", metavar="TABLE", default=None,
                          help="evaluate per call, not per file: a box table (CSV or Parquet with File Name, "
                               "start_time_s, end_time_s, as calls.csv; call_index optional) or 'detected' (bat-core "
                               "segment's table). --label may name one of its columns (else each call takes its "
                               "recording's label from annotations.csv; a column of our own detector's table is never "
                               "probed). Calls come from per-call outputs (--segments runs) or slices of whole-file "
                               "outputs by time; folds never split a recording")
    evaluate.add_argument("--ngrams", type=positive_int, default=1,
                          help="token features: 1 (default) = unigram code frequencies; N adds n-grams of order 2..N "
                               "along time only (2-D codes: per frequency row), hashed into 4096 columns per order")
    evaluate.add_argument("--examples", type=non_negative_int, default=3, help="example files drawn with their tokens (default: 3)")
    evaluate.add_argument("--out", default=None, help="report folder (default: DERIVED/report)")
    evaluate.add_argument("--note", action="append", default=[], help="a sentence to state in the report (repeatable)")
    evaluate.set_defaults(handler=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
