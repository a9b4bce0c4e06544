"""Options, logging, exit codes and summaries shared by every bat-tokenizers CLI.

Imports nothing heavy at module level (no numpy, pandas, torch): a CLI parses its arguments
first, so ``--help`` answers at once, and loads the library in the command it runs.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bat_core.errors import BatError, DatasetError

if TYPE_CHECKING:
    from bat_core.calls import CallSelection
    from bat_core.dataset import Dataset
    from bat_core.paths import ProjectPaths
    from bat_core.runner import RunOptions
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
  2    nothing was processed: bad option, unusable dataset or model, unwritable or full output folder,
       another run writing the same outputs, a missing optional dependency
  130  interrupted (rerun the same command to resume)"""

TAG_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# -- argument types: a bad value is a usage error (exit 2) with one line, never a traceback -----------
def positive_int(text: str) -> int:
    return _bounded(int, text, 1, "an integer >= 1")


def auto_or_positive_int(text: str) -> int | None:
    """``auto`` (None: decided by the command) or an integer >= 1."""
    return None if text.strip().lower() == "auto" else _bounded(int, text, 1, "auto or an integer >= 1")


def non_negative_int(text: str) -> int:
    return _bounded(int, text, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    value = _bounded(float, text, 0.0, "a number > 0")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def bounded_float(low: float, high: float, *, above_low: bool = False) -> Callable[[str], float]:
    """An argument type taking a finite number in ``[low, high]`` (``(low, high]`` with ``above_low``): NaN, inf
    and absurd values (1e300 dB) are usage errors at parse time, not a run whose every file then fails."""
    what = f"a number {'>' if above_low else '>='} {low:g} and <= {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not (math.isfinite(value) and (value > low if above_low else value >= low) and value <= high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = "number"  # argparse names the type in some messages
    return parse


def fraction(text: str) -> float:
    value = _bounded(float, text, 0.0, "a number in [0, 1)")
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def workers(text: str) -> int:
    return default_workers() if text == "auto" else _bounded(int, text, 0, "'auto' or an integer >= 0")


def shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise argparse.ArgumentTypeError(f"takes I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def tag(text: str) -> str:
    if not TAG_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"takes 1-64 letters, digits, '_' or '-', got {text!r}")
    return text


def _bounded(kind, text: str, low, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def default_workers() -> int:
    """Decoding processes when ``--num-workers auto``: one per core but one (left to the model and the
    writing), at most 8. On the 2-core CPU a second worker took CPU from the model: wav2vec2 + k-means on
    128 clips ran 1.45x the naive recipe with one worker, 1.18x with two (tools/bench/w2v_kmeans.py)."""
    return max(1, min(8, (os.cpu_count() or 1) - 1))


# -- options --------------------------------------------------------------------------------------
def add_common_arguments(
    parser: argparse.ArgumentParser, *, device: bool = True, batch_size: int | str | None = 8, seed: bool = False,
    overwrite: bool = True, shard_option: bool = True, tag_option: bool = True, workers_option: bool = True,
    engine_option: bool | None = None,
) -> None:
    """The options of a per-file command; each is added only where the command uses it. ``batch_size="auto"``
    accepts auto or N (``None`` in ``args`` for auto: the command decides by device). ``engine_option``
    (default: the per-file commands, those with ``--shard``) adds ``--engine ray`` and its options."""
    data = parser.add_argument_group("data")
    data.add_argument("--root", default=".", help="project root holding data/annotations.csv and data/audio/ (default: .)")
    data.add_argument("--derived", default=None, help="where outputs go (default: ROOT/derived); use it when ROOT is read-only")
    data.add_argument("--limit", type=non_negative_int, default=None, help="process only the first N selected files")
    data.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                      help="keep rows whose label COLUMN equals VALUE (repeatable; all must match)")
    if shard_option:
        data.add_argument("--shard", type=shard, default=None, metavar="I/N",
                          help="process only shard I of N (0 <= I < N; files split by sha1 of their name, after --where "
                               "and --limit): N shards run as separate processes or jobs into one --derived, and their "
                               "manifests fold into one")
    run = parser.add_argument_group("run")
    if tag_option:
        run.add_argument("--tag", type=tag, default=None,
                         help="name this configuration's outputs (and models) so they live beside others, e.g. k64 and "
                              "k256 (default: the standard layout)")
    if device:
        run.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    if batch_size == "auto":
        run.add_argument("--batch-size", type=auto_or_positive_int, default=None, metavar="auto|N",
                         help="pieces per model batch (default: auto: 8 on CPU; on a GPU as many as the batch's "
                              "seconds of audio allow, sized from free GPU memory)")
    elif batch_size is not None:
        run.add_argument("--batch-size", type=positive_int, default=batch_size,
                         help=f"pieces per model batch (default: {batch_size})")
    if workers_option:
        run.add_argument("--num-workers", type=workers, default="auto", metavar="auto|N",
                         help="processes decoding and converting audio; 0 decodes in this process (default: auto, one "
                              f"per core but one, up to 8: {default_workers()} here)")
        run.add_argument("--max-memory", type=positive_int, default=256, metavar="MB",
                         help="decoded audio in flight between the decoding processes and the model (default: 256)")
    if seed:
        run.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    if shard_option if engine_option is None else engine_option:
        add_engine_arguments(parser)
    if overwrite:
        run.add_argument("--overwrite", action="store_true",
                         help="redo what is already done with the same configuration, and replace existing models")
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
    from bat_core.dataset import Dataset

    dataset = Dataset.from_root(args.root, args.derived)
    return dataset.select(parse_where(args.where), args.limit, getattr(args, "shard", None))


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    engine = parser.add_argument_group("engine (scale-out)")
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: decoding processes on this machine feed the model here (default); ray: Ray "
                             "tasks decode, a pool of Ray actors each holding the model encodes and writes, on a "
                             "local Ray or the cluster of --ray-address (needs: pip install 'bat-core[ray]'); "
                             "outputs and manifest rows are the same, and a rerun resumes either way")
    engine.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="with --engine ray: the cluster to join ('auto' finds the one `ray start` made here, or "
                             "ray://HOST:10001); default: start a local Ray on this machine's cores. --derived must "
                             "be on storage every node mounts at the same path (checked)")
    engine.add_argument("--ray-workers", type=positive_int, default=None, metavar="N",
                        help="with --engine ray: model actors (default: the cluster's GPUs / --gpus-per-worker; without "
                             "GPUs its CPUs / --cpus-per-worker, each actor decoding its own files)")
    engine.add_argument("--gpus-per-worker", type=bounded_float(0.0, 1024.0), default=0.0, metavar="G",
                        help="with --engine ray: GPUs each model actor holds (default: 0; 0.5 puts two on a GPU); "
                             "under --engine ray, --device auto means cuda when this is above 0, else cpu")
    engine.add_argument("--cpus-per-worker", type=bounded_float(0.0, 1024.0, above_low=True), default=1.0, metavar="C",
                        help="with --engine ray: CPUs each model actor holds (default: 1)")


def run_options(args: argparse.Namespace, description: str = "") -> RunOptions:
    from bat_core.runner import RunOptions

    return RunOptions(workers=getattr(args, "num_workers", 0), max_memory_mb=getattr(args, "max_memory", 256),
                      show_progress=show_progress(args), description=description, ray=ray_options(args))


def ray_options(args: argparse.Namespace):
    """A ``RayOptions`` for ``--engine ray``, else None; Ray options without it, or with ``--shard``, exit 2."""
    engine = getattr(args, "engine", "local")
    given = [flag for flag, name, default in (("--ray-address", "ray_address", None), ("--ray-workers", "ray_workers", None),
                                              ("--gpus-per-worker", "gpus_per_worker", 0.0),
                                              ("--cpus-per-worker", "cpus_per_worker", 1.0))
             if getattr(args, name, default) != default]
    if engine != "ray":
        if given:
            raise BatError(f"{', '.join(given)}: only with --engine ray")
        return None
    if getattr(args, "shard", None) is not None:
        raise BatError("--shard and --engine ray are two ways to split a run: use one (Ray spreads the files itself)")
    from bat_core.ray_engine import RayOptions, require_ray

    require_ray()
    return RayOptions(address=args.ray_address, workers=args.ray_workers, gpus_per_worker=args.gpus_per_worker,
                      cpus_per_worker=args.cpus_per_worker)


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


_ENVIRONMENT_ERRNOS = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                       errno.EPERM: "operation not permitted", errno.ENOSPC: "no space left on the device",
                       errno.EDQUOT: "disk quota exceeded", errno.ENOTDIR: "a file stands where a folder should be",
                       errno.EEXIST: "a file stands where a folder should be", errno.EISDIR: "a folder stands where a file should be"}


def run_main(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand: our errors and an unwritable or full disk become one line and exit code 2."""
    configure_logging(args)
    _terminate_like_interrupt()
    if getattr(args, "engine", "local") == "ray" and getattr(args, "device", None) == "auto":
        args.device = "cuda" if getattr(args, "gpus_per_worker", 0) > 0 else "cpu"  # what each Ray worker holds
    try:
        return command(args)
    except BatError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        if error.errno not in _ENVIRONMENT_ERRNOS:
            raise
        where = f" {error.filename}" if error.filename else ""
        print(f"error: cannot write{where}: {_ENVIRONMENT_ERRNOS[error.errno]}; pass --derived DIR (or another output "
              "path) to write elsewhere, then rerun: finished files are kept", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _terminate_like_interrupt() -> None:
    """SIGTERM (timeout, SLURM, docker stop) ends a run as Ctrl-C does: journal folded, lock released, exit 130."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        pass


def add_time_expansion_arguments(parser: argparse.ArgumentParser, default: str = "auto", why: str = "") -> None:
    """``--time-expansion`` and ``--band``; a command whose own default is not auto says ``why`` in its help."""
    help_text = TIME_EXPANSION_HELP if default == "auto" else (
        TIME_EXPANSION_HELP.replace("'auto' (default)", "'auto'") + f"; default here: {default} ({why})")
    parser.add_argument("--time-expansion", default=default, metavar="auto|K", help=help_text)
    parser.add_argument("--band", nargs=2, type=positive_float, default=(15_000.0, 120_000.0), metavar=("LOW_HZ", "HIGH_HZ"),
                        help="the bat band, in original Hz (default: 15000 120000): 'auto' picks the factor that keeps "
                             "it, and whatever the factor, what lies above HIGH_HZ is low-passed away, so recordings at "
                             "different sample rates give the model the same band; raise HIGH_HZ to keep more")


def time_expansion_from_args(args: argparse.Namespace) -> TimeExpansion:
    from bat_core.time_expansion import TimeExpansion

    if args.band[0] >= args.band[1]:
        raise DatasetError(f"--band needs LOW_HZ < HIGH_HZ, got {args.band[0]:g} {args.band[1]:g}")
    try:
        return TimeExpansion.parse(args.time_expansion, band_low_hz=args.band[0], band_high_hz=args.band[1])
    except ValueError as error:
        raise DatasetError(f"--time-expansion: {error}") from error


def add_segments_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("per-call encoding")
    group.add_argument("--segments", metavar="TABLE|detected",
                       help="encode each call of a box table alone (with --context-ms of audio each side) instead of "
                            "whole recordings: a CSV/Parquet with the columns of calls.csv (File Name, start_time_s, "
                            "end_time_s, call_index optional), or 'detected' for the table `bat-core segment` wrote. "
                            "Outputs are their own representation (tag 'calls'), one table row per call in "
                            "derived/calls/<representation>.parquet; times in seconds of the original recording")
    group.add_argument("--context-ms", type=context_ms, default=None, metavar="MS",
                       help="original-time audio kept before and after each call (default: 5); a call shorter than the "
                            "model's shortest input is widened with the audio around it, never zero padded")


def context_ms(text: str) -> float:
    value = _bounded(float, text, 0.0, "a number of milliseconds in [0, 1000]")
    if not value <= 1000:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be a number of milliseconds in [0, 1000], got {text!r}")
    return value


def selection_from_args(args: argparse.Namespace, paths: ProjectPaths) -> CallSelection | None:
    """The calls ``--segments`` names (checked before any work), or None for whole recordings. Boxes of
    recordings the dataset does not list are said, once, and ignored."""
    from bat_core.calls import DEFAULT_CONTEXT_S, load_selection, resolve_segments
    from bat_core.dataset import Dataset

    if getattr(args, "segments", None) is None:
        if getattr(args, "context_ms", None) is not None:
            raise DatasetError("--context-ms is for per-call runs: add --segments TABLE (or leave it out)")
        return None
    context = DEFAULT_CONTEXT_S if args.context_ms is None else args.context_ms / 1000
    selection = load_selection(resolve_segments(args.segments, paths), context)
    known = {item.file_name for item in Dataset.from_paths(paths)}
    unknown = sorted(set(selection.spans) - known)
    if len(unknown) == len(selection.spans):
        example = f" (its first: {unknown[0]!r}; annotations.csv's first: {min(known)!r})" if unknown and known else ""
        raise DatasetError(f"no box of {selection.source} belongs to a recording of {paths.annotations_csv}: nothing "
                           f"to encode per call{example}")
    if unknown:
        print(f"warning: {len(unknown)} recording(s) of {selection.source} are not in {paths.annotations_csv} and are "
              f"ignored (first: {unknown[0]})", file=sys.stderr)
    return selection


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
                             "with AVX512-BF16/AMX: about 2x faster there, outputs close to but not identical with fp32. "
                             "Part of the configuration: outputs of another precision are redone")
