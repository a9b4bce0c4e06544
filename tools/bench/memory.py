"""Peak memory against recording length: the same command on a short and a long recording, side by side.

For each per-file command (bat-core mels; bat-w2v-kmeans run; bat-ast-embed embed; bat-vqvae train
and encode, whichever are installed), on generated 384 kHz recordings (quiet noise with a 40 kHz
call each second): peak RSS of the whole process tree (decoding workers included) on a SHORT
recording, on a LONG one, and (--three) on three short and three long ones in one run. The runner
issue's targets: long within 1.25x (or +300 MB) of short, and three long no higher than one. A run of
one file starts one decoding worker, a run of three starts --workers of them, so three files are
compared with three short files (same processes), and their extra workers are reported beside. Encoders are tiny random-weight
models (the 10-minute case must run on 2 cores); `--base` uses base-size encoders (wav2vec2-base,
AST-base shapes, random weights) for the "< 2 GB on a 2-minute file" target.

    python tools/bench/memory.py --short 10 --long 600          # tiny encoders, 10 s vs 10 min
    python tools/bench/memory.py --short 10 --long 120 --base   # base-size encoders, 2-minute file
    python tools/bench/memory.py --engine ray --only mels --only w2v   # the same under --engine ray
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from process_tree import measure  # noqa: E402


def project(root: Path, seconds: float, files: int) -> Path:
    from bat_core.testing import write_long_recording

    names = [f"night_{i}.wav" for i in range(files)]
    for index, name in enumerate(names):
        write_long_recording(root / "data" / "audio" / name, seconds=seconds, sample_rate=384_000, seed=index)
    (root / "data" / "annotations.csv").write_text("File Name\n" + "\n".join(names) + "\n")
    return root


def models(work: Path, base: bool) -> dict[str, Path]:
    from bat_core import testing

    made = {}
    if importlib.util.find_spec("bat_w2v_kmeans"):
        made["w2v"] = work / "w2v"
        if base:
            from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

            Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(made["w2v"])
            Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(made["w2v"])
        else:
            testing.make_tiny_speech_encoder(made["w2v"])
    if importlib.util.find_spec("bat_ast_embed"):
        made["ast"] = work / "ast"
        if base:
            from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

            ASTModel(ASTConfig()).save_pretrained(made["ast"])
            ASTFeatureExtractor().save_pretrained(made["ast"])
        else:
            testing.make_tiny_ast(made["ast"])
    return made


def commands(root: Path, made: dict[str, Path], workers: int, engine: str = "local") -> dict[str, list[list[str]]]:
    bin_dir = Path(sys.executable).parent
    common = ["--root", str(root), "-q", "--num-workers", str(workers)]
    per_file = [*common, "--engine", engine]  # the commands --engine applies to (not training)
    found = {"bat-core mels": [[str(bin_dir / "bat-core"), "mels", *per_file]]}
    if "w2v" in made:
        found["bat-w2v-kmeans run"] = [[str(bin_dir / "bat-w2v-kmeans"), "run", *per_file, "--model",
                                        str(made["w2v"]), "--k", "16", "--max-fit-frames", "5000"]]
    if "ast" in made:
        found["bat-ast-embed embed"] = [[str(bin_dir / "bat-ast-embed"), "embed", *per_file, "--model", str(made["ast"])]]
    if importlib.util.find_spec("bat_vqvae"):
        vq = str(bin_dir / "bat-vqvae")
        found["bat-vqvae train"] = [[vq, "train", *common, "--steps", "30", "--batch-size", "4", "--hidden", "16",
                                     "--codes", "32", "--code-dim", "8", "--holdout-fraction", "0"]]  # local either way
        found["bat-vqvae encode"] = [[vq, "encode", *per_file]]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=float, default=10.0, help="seconds of the short recording (default: 10)")
    parser.add_argument("--long", type=float, default=600.0, help="seconds of the long recording (default: 600)")
    parser.add_argument("--base", action="store_true", help="base-size encoders instead of tiny ones")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes (default: 2)")
    parser.add_argument("--three", action="store_true", help="also run three long recordings at once")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="--engine of the per-file commands (ray: each command starts its own local Ray, whose "
                             "processes are in the measured tree; training stays local)")
    parser.add_argument("--only", action="append", default=[], help="run only commands whose name contains this")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bat-memory-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    try:
        made = models(work / "models", args.base)
        cases = {"short": (args.short, 1), "long": (args.long, 1)}
        if args.three:
            cases["3 x short"] = (args.short, 3)
            cases["3 x long"] = (args.long, 3)
        roots = {case: project(work / case.replace(" ", ""), seconds, files) for case, (seconds, files) in cases.items()}
        print(f"# peak RSS of the process tree (MB); recordings at 384 kHz; short {args.short:g} s, long "
              f"{args.long:g} s; {'base-size' if args.base else 'tiny'} encoders; {args.workers} decoding workers; --engine {args.engine}")
        print(f"{'command':22s} " + " ".join(f"{case:>10s}" for case in cases) + "   long/short"
              + ("   3long/3short" if args.three else "") + "   seconds(long)")
        for name in commands(roots["short"], made, args.workers, args.engine):
            if args.only and not any(part in name for part in args.only):
                continue
            peaks, seconds = {}, {}
            for case, root in roots.items():
                for argv in commands(root, made, args.workers, args.engine)[name]:
                    result = measure(argv, env)
                    if result.returncode not in (0, 1):
                        print(f"{name} on {case} exited {result.returncode}:\n{result.output[-2000:]}")
                    peaks[case] = max(peaks.get(case, 0.0), result.peak_mb)
                    seconds[case] = seconds.get(case, 0.0) + result.seconds
            ratio = peaks["long"] / peaks["short"]
            three = f"   {peaks['3 x long'] / peaks['3 x short']:12.2f}x" if args.three else ""
            print(f"{name:22s} " + " ".join(f"{peaks[case]:10.0f}" for case in cases)
                  + f"   {ratio:9.2f}x{three}   {seconds['long']:12.1f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
