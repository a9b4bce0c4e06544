"""Figures of the report: spectrograms with token sequences under them, codebook usage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bat_core.evaluate.representations import Representation


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def example_figure(file_name: str, mel: np.ndarray, mel_fps: float, tokens: list[Representation], out: Path) -> Path:
    """The file's log-mel with each token representation under it, on one time axis (original seconds)."""
    plt = _pyplot()
    rows = [r for r in tokens if file_name in r.paths]
    figure, axes = plt.subplots(1 + len(rows), 1, figsize=(11, 2.6 + 1.6 * len(rows)), sharex=True,
                                constrained_layout=True, gridspec_kw={"height_ratios": [3] + [1] * len(rows)})
    axes = np.atleast_1d(axes)
    seconds = mel.shape[1] / mel_fps
    low, high = np.percentile(mel, [5, 99.5])
    axes[0].imshow(mel, origin="lower", aspect="auto", extent=[0, seconds, 0, mel.shape[0]], vmin=low, vmax=high, cmap="magma")
    axes[0].set_ylabel("log-mel band")
    axes[0].set_title(file_name)
    for axis, representation in zip(axes[1:], rows):
        codes = representation.array(file_name)
        fps = representation.frames_per_second[file_name]
        grid = codes[None, :] if codes.ndim == 1 else codes.T
        axis.imshow(grid, origin="lower", aspect="auto", interpolation="nearest", cmap="tab20",
                    extent=[0, codes.shape[0] / fps, 0, grid.shape[0]])
        axis.set_ylabel(representation.name, rotation=0, ha="right", va="center")
        axis.set_yticks([])
    axes[-1].set_xlabel("seconds of the original recording")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


def usage_figure(name: str, counts: list[int], out: Path) -> Path:
    """Code frequencies, most used first (log scale): a collapsed codebook shows at a glance."""
    plt = _pyplot()
    ordered = np.sort(np.asarray(counts))[::-1]
    figure, axis = plt.subplots(figsize=(7, 3), constrained_layout=True)
    axis.bar(np.arange(len(ordered)), np.maximum(ordered, 0.8), width=1.0, color="#3b6ea8")
    axis.set_yscale("log")
    axis.set_xlabel("code rank")
    axis.set_ylabel("count")
    used = int(np.count_nonzero(ordered))
    axis.set_title(f"{name}: {used} of {len(ordered)} codes used")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
