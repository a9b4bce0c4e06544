"""x real time of ``bat-core segment`` on a 10-minute 384 kHz recording, decoding included, one process.

Run with one FFT/BLAS thread (the target: >= 200x)::

    OMP_NUM_THREADS=1 PYTHONPATH=packages/core/src python tools/bench/segment_speed.py [--minutes 10] [--repeat 3]

The file is generated once (``bat_core.testing.write_long_recording``) into a temporary folder;
the best of ``--repeat`` runs is reported, since a shared machine's other work only slows a run down.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from bat_core.dataset import Dataset
    from bat_core.runner import RunOptions
    from bat_core.segments.command import segment_project
    from bat_core.testing import write_long_recording

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seconds = 60 * args.minutes
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_long_recording(root / "data" / "audio" / "long.wav", seconds=seconds, sample_rate=384_000)
        (root / "data" / "annotations.csv").write_text("File Name\nlong.wav\n")
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            summary = segment_project(Dataset.from_root(root), overwrite=True,
                                      options=RunOptions(workers=0, show_progress=False))
            timings.append(time.perf_counter() - start)
        assert summary.run.done == 1, summary.line()
    best = min(timings)
    print(f"segment: {seconds:.0f} s of 384 kHz audio in {best:.2f} s (best of {args.repeat}; all: "
          f"{', '.join(f'{t:.2f}' for t in timings)}) = {seconds / best:.0f}x real time, {summary.n_calls} calls, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")


if __name__ == "__main__":
    main()
