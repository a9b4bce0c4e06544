"""Agreement of ``bat-core segment`` with the batdetect2 boxes of shared/bats/calls.csv (onset within 10 ms).

For tuning the detector's defaults by eye, not a target: batdetect2's boxes are model output
themselves. Prints per file and overall precision, recall and F1 of onsets.

    PYTHONPATH=packages/core/src python tools/bench/segment_agreement.py [--shared shared/bats] [--high-db 15 ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def match_onsets(detected: np.ndarray, truth: np.ndarray, tolerance_s: float) -> int:
    """Greedy one-to-one matches of onsets (each truth onset to the nearest free detection within tolerance)."""
    free = list(detected)
    matched = 0
    for onset in truth:
        if not free:
            break
        distances = np.abs(np.asarray(free) - onset)
        best = int(np.argmin(distances))
        if distances[best] <= tolerance_s:
            matched += 1
            free.pop(best)
    return matched


def main() -> None:
    import soundfile as sf

    from bat_core.segments import DetectorParams, detect_calls
    from bat_core.segments.table import read_boxes
    from bat_core.testing import find_shared_bats

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=None, help="shared/bats folder (default: found beside the checkout)")
    parser.add_argument("--tolerance-ms", type=float, default=10.0)
    names = ("high_db", "low_db", "merge_ms", "min_ms", "max_ms", "frame_ms", "hop_ms", "integrate_gain", "click_crest")
    for name in names:
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=None)
    parser.add_argument("--integrate-frames", type=int, default=None)
    args = parser.parse_args()
    shared = Path(args.shared) if args.shared else find_shared_bats(Path(__file__).parent)
    if shared is None:
        raise SystemExit("shared/bats not found: pass --shared")
    overrides = {name: getattr(args, name) for name in (*names, "integrate_frames") if getattr(args, name) is not None}
    params = DetectorParams(**overrides)
    boxes = read_boxes(shared / "calls.csv")
    total = {"detected": 0, "truth": 0, "matched": 0}
    for file_name, truth in boxes.groupby("File Name"):
        samples, rate = sf.read(shared / "data" / "audio" / file_name, dtype="float32", always_2d=True)
        calls = detect_calls(samples.mean(axis=1), rate, params)
        matched = match_onsets(calls.start_time_s.to_numpy(), truth.start_time_s.to_numpy(), args.tolerance_ms / 1000)
        print(f"{file_name}: {rate} Hz, {len(truth)} boxes, {len(calls)} detections, {matched} onsets within "
              f"{args.tolerance_ms:g} ms")
        total["detected"] += len(calls)
        total["truth"] += len(truth)
        total["matched"] += matched
    precision = total["matched"] / max(1, total["detected"])
    recall = total["matched"] / max(1, total["truth"])
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    print(f"overall: precision {precision:.3f} recall {recall:.3f} F1 {f1:.3f} ({params})")


if __name__ == "__main__":
    main()
