"""How long `--help` takes for every installed CLI, beside what the CLIs cost when they imported torch and
transformers before parsing (round 1: 1.9 s on the 2-core CPU, 4.45 s on the GPU box). Target: <= 0.5 s.

    python tools/bench/cli_startup.py --repeat 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLIS = [("bat-core", ["mels", "--help"]), ("bat-w2v-kmeans", ["run", "--help"]), ("bat-ast-embed", ["embed", "--help"]),
        ("bat-vqvae", ["train", "--help"])]


def timed(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    heavy = timed([sys.executable, "-c", "import torch, transformers, pandas"], args.repeat)
    print(f"import torch + transformers + pandas (what round-1 CLIs paid before parsing): {heavy:.2f} s (median of {args.repeat})")
    for name, sub in CLIS:
        script = bin_dir / name
        if not script.exists() and shutil.which(name) is None:
            continue
        seconds = timed([str(script if script.exists() else name), "--help"], args.repeat)
        sub_seconds = timed([str(script if script.exists() else name), *sub], args.repeat)
        verdict = "met" if max(seconds, sub_seconds) <= 0.5 else "MISSED"
        print(f"{name:16s} --help {seconds:.2f} s, {' '.join(sub):16s} {sub_seconds:.2f} s  "
              f"({heavy / max(seconds, sub_seconds):.1f}x faster than the imports alone; <= 0.5 s: {verdict})")


if __name__ == "__main__":
    main()
