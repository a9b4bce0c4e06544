"""Options, logging, exit codes and summaries shared by every bat-tokenizers CLI."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from bat_core.dataset import Dataset
from bat_core.errors import BatError, DatasetError
from bat_core.store import RunSummary
from bat_core.time_expansion import TimeExpansion

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

TIME_EXPANSION_HELP = (
    "time-expansion factor K: a recording at SR Hz is read as audio at SR/K Hz before "
    "resampling, so ultrasonic calls survive; 'auto' (default) picks the smallest K that "
    "puts the bat band (--band) under the target Nyquist; 1 is plain resampling"
)

EXIT_CODES_HELP = """exit codes:
  0    every file done (or already done)
  1    finished, but some files failed: see the summary and the manifest's reason column
  2    bad usage or unusable dataset/model: nothing was processed
  130  interrupted (rerun the same command to resume)"""


def add_common_arguments(
    parser: argparse.ArgumentParser, *, device: bool = True, batch_size: int | None = 8,
) -> None:
    """The options every per-file command takes. ``device``/``batch_size`` only where used."""
    data = parser.add_argument_group("data")
    data.add_argument("--root", default=".", help="project root holding data/annotations.csv and data/audio/ (default: .)")
    data.add_argument("--derived", default=None, help="where outputs go (default: ROOT/derived); use it when ROOT is read-only")
    data.add_argument("--limit", type=int, default=None, help="process only the first N selected files")
    data.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                      help="keep rows whose label COLUMN equals VALUE (repeatable; all must match)")
    run = parser.add_argument_group("run")
    if device:
        run.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    if batch_size is not None:
        run.add_argument("--batch-size", type=int, default=batch_size, help=f"items per model batch (default: {batch_size})")
    run.add_argument("--num-workers", type=int, default=2, help="background threads decoding and resampling audio (0: inline; default: 2)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    run.add_argument("--overwrite", action="store_true", help="redo files already done with the same configuration")
    verbosity = run.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")


def parse_where(pairs: Sequence[str]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column:
            raise DatasetError(f"--where takes COLUMN=VALUE, got {pair!r}")
        where.setdefault(column.strip(), []).append(value.strip())
    return where


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    dataset = Dataset.from_root(args.root, args.derived)
    return dataset.select(parse_where(args.where), args.limit)


def configure_logging(args: argparse.Namespace) -> None:
    if getattr(args, "quiet", False):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' weight-loading bars
    level = logging.DEBUG if getattr(args, "verbose", False) else (
        logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


def show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False)


def report_summary(summary: RunSummary, max_failures: int = 20) -> int:
    """Print the one-line summary (and the first failures); return the exit code."""
    for file_name, reason in summary.failures[:max_failures]:
        print(f"failed: {file_name}: {reason}", file=sys.stderr)
    if len(summary.failures) > max_failures:
        print(f"... and {len(summary.failures) - max_failures} more failures (see the manifest)", file=sys.stderr)
    print(summary.line())
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def run_main(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand, turning our errors into a message and exit code 2."""
    configure_logging(args)
    try:
        return command(args)
    except BatError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def add_time_expansion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-expansion", default="auto", metavar="auto|K", help=TIME_EXPANSION_HELP)
    parser.add_argument("--band", nargs=2, type=float, default=(15_000.0, 120_000.0), metavar=("LOW_HZ", "HIGH_HZ"),
                        help="the band that must survive, in original Hz (default: 15000 120000)")


def time_expansion_from_args(args: argparse.Namespace) -> TimeExpansion:
    try:
        return TimeExpansion.parse(args.time_expansion, band_low_hz=args.band[0], band_high_hz=args.band[1])
    except ValueError as error:
        raise DatasetError(f"--time-expansion: {error}") from error


def cli_parser(prog: str, version: str, description: str) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """A package CLI: ``prog COMMAND ...`` with --version and the exit codes in every --help."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EXIT_CODES_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{prog} {version}")
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def add_command(commands: argparse._SubParsersAction, name: str, **kwargs) -> argparse.ArgumentParser:
    kwargs.setdefault("epilog", EXIT_CODES_HELP)
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    return commands.add_parser(name, **kwargs)


def cli_main(build_parser: Callable[[], argparse.ArgumentParser], argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(args.handler, args)


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                        help="model arithmetic: auto = fp32 on CPU, bf16 (or fp16) on GPU. bf16 is also accepted on CPUs "
                             "with AVX512-BF16/AMX: about 2x faster there, outputs close to but not identical with fp32")
