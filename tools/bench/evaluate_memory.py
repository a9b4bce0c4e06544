"""Peak memory of `bat-core evaluate` on many token files: features must be built streaming and sparse.

Generates, in a temporary folder, FILES token outputs of SECONDS at 50 tokens/s with K=256 in both
layouts a strategy writes (1-D ``(T,)`` as bat-w2v-kmeans, and ``(T', F')`` grids with 8 frequency rows as
bat-vqvae), each with its manifest, plus an annotations.csv with 4 classes (no audio: the mel baselines
report those files as failed). Then runs `bat-core evaluate` (with and without --ngrams 2) and samples the
peak resident memory of its whole process tree. Target: < 1 GB (the earlier dense K + K^2 float64 vectors
needed about 5 GB at 10,000 files).

    python tools/bench/evaluate_memory.py --files 10000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_tree import measure  # noqa: E402

K = 256
TOKENS_PER_SECOND = 50
FREQUENCY_ROWS = 8


def write_project(root: Path, files: int, seconds: float, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    names = [f"rec_{i:05d}.wav" for i in range(files)]
    classes = np.arange(files) % 4
    (root / "data" / "audio").mkdir(parents=True)
    pd.DataFrame({"File Name": names, "call_type": [f"c{c}" for c in classes],
                  "site": [f"s{i % 20}" for i in range(files)]}).to_csv(root / "data" / "annotations.csv", index=False)
    class_codes = [rng.dirichlet(np.full(K, 0.3)) for _ in range(4)]
    length = int(seconds * TOKENS_PER_SECOND)
    for name, shape in (("w2v_kmeans", (length,)), ("vqvae", (length, FREQUENCY_ROWS))):
        folder = root / "derived" / "tokens" / name
        folder.mkdir(parents=True)
        rows = []
        for file_name, label in zip(names, classes):
            path = folder / f"{name}_{Path(file_name).stem}.npy"
            np.save(path, rng.choice(K, size=shape, p=class_codes[label]).astype(np.int16))
            rows.append({"file_name": file_name, "stem": Path(file_name).stem, "status": "ok", "reason": "",
                         "output_path": str(path.relative_to(root / "derived")), "kind": "tokens",
                         "codebook_size": K, "config_hash": "bench", "model_id": "generated",
                         "frames_per_second": float(TOKENS_PER_SECOND), "seconds": seconds, "time_expansion": 1.0,
                         "extra": "{}", "package_versions": "{}", "schema_version": 2})
        (root / "derived" / "manifests").mkdir(exist_ok=True)
        pd.DataFrame(rows).to_parquet(root / "derived" / "manifests" / f"{name}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bat-evaluate-memory-") as scratch:
        root = Path(scratch)
        write_project(root, args.files, args.seconds)
        env = {**os.environ}
        for extra in ([], ["--ngrams", "2"]):
            argv = [sys.executable, "-m", "bat_core.cli", "evaluate", "--root", str(root), "--label", "call_type",
                    "--group", "site", "--examples", "0", "--num-workers", "0", "--quiet", *extra]
            result = measure(argv, env)
            report = json.loads((root / "derived" / "report" / "report.json").read_text())
            accuracies = {row["name"]: row["probe_accuracy"] for row in report["rows"] if row["kind"] == "tokens"}
            print(f"{args.files} files x 2 layouts, {' '.join(extra) or 'unigrams'}: peak RSS (process tree) "
                  f"{result.peak_mb:.0f} MB, {result.seconds:.1f} s, exit {result.returncode}, probe {accuracies}")
            if result.returncode not in (0, 1):
                print(result.output[-3000:])


if __name__ == "__main__":
    main()
