"""Figures of the report: spectrograms with token sequences under them, codebook usage, each probe's confusion
matrix, and a 2-D map (PCA) of the per-file or per-call vectors coloured by label."""

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


def confusion_figure(name: str, classes: list[str], matrix: list[list[int]], out: Path) -> Path:
    """Counts of true (rows) against predicted (columns) classes over the test folds, each row shaded by its share."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.45 * len(classes)
    figure, axis = plt.subplots(figsize=(size + 1, size), constrained_layout=True)
    image = axis.imshow(shares, vmin=0, vmax=1, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        axis.text(column, row, f"{int(count)}", ha="center", va="center",
                  color="white" if shares[row, column] > 0.5 else "black", fontsize=8)
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(classes)), classes, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{name}: probe on the test folds")
    figure.colorbar(image, ax=axis, label="share of the true class")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


def project_2d(vectors) -> tuple[np.ndarray, list[float]] | None:
    """The first two principal components (scikit-learn's PCA; sparse rows through ARPACK, never densified) and
    the share of variance each explains; None when the rows do not vary (every file holds the same codes)."""
    import scipy.sparse as sp
    from sklearn.decomposition import PCA

    spread = vectors.max(axis=0) - vectors.min(axis=0)
    if not (spread.count_nonzero() if sp.issparse(spread) else np.count_nonzero(spread)):
        return None
    pca = PCA(n_components=2, svd_solver="arpack" if sp.issparse(vectors) else "auto", random_state=0)
    try:
        points = pca.fit_transform(vectors)
    except (ValueError, RuntimeError):  # ARPACK fails on rows that vary along one direction only
        return None
    return points, [float(v) for v in pca.explained_variance_ratio_]


def map_figure(name: str, points: np.ndarray, explained: list[float], labels: list[str], unit: str, out: Path) -> Path:
    """Each file or call as a point of the first two components, coloured by label (unlabelled: grey)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 5), constrained_layout=True)
    classes = sorted({label for label in labels if label})
    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    labels = np.asarray(labels)
    if (labels == "").any():
        axis.scatter(*points[labels == ""].T, s=12, c="#bbbbbb", label="unlabelled")
    for index, label in enumerate(classes):
        axis.scatter(*points[labels == label].T, s=14, color=colours(index % colours.N), label=label)
    axis.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}% of variance)")
    axis.set_ylabel(f"PC 2 ({100 * explained[1]:.0f}% of variance)")
    axis.set_title(f"{name}: one point per {unit}")
    if classes:
        axis.legend(fontsize=7, markerscale=1.2, loc="best")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
