"""Input vs reconstruction as a PNG: the quickest check that the codes keep the calls.

matplotlib is the ``plot`` extra: imported here, where a figure is drawn, and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bat_core.errors import MissingExtraError


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or MissingExtraError with the install line."""
    try:
        import matplotlib
    except ImportError as error:
        raise MissingExtraError("drawing reconstructions needs matplotlib: pip install 'bat-vqvae[plot]'") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render_reconstruction(mel: np.ndarray, reconstruction: np.ndarray, codes: np.ndarray, title: str,
                          out_path: str | Path, frames_per_second: float | None = None) -> Path:
    plt = pyplot()
    seconds = mel.shape[1] / frames_per_second if frames_per_second else mel.shape[1]
    extent = [0, seconds, 0, mel.shape[0]]
    figure, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    low, high = np.percentile(mel, [5, 99.5])
    for axis, image, label in ((axes[0], mel, "input log-mel"), (axes[1], reconstruction, "reconstruction")):
        axis.imshow(image, origin="lower", aspect="auto", extent=extent, vmin=low, vmax=high, cmap="magma")
        axis.set_ylabel(f"{label}\nmel band")
    grid = codes if codes.ndim == 2 else codes[:, None]  # the time layout: one row of codes
    axes[2].imshow(grid.T, origin="lower", aspect="auto", extent=[0, seconds, 0, grid.shape[1]],
                   cmap="tab20", interpolation="nearest")
    axes[2].set_ylabel("codes\nfrequency row" if codes.ndim == 2 else "codes\n(one per time step)")
    axes[2].set_xlabel("seconds of original recording" if frames_per_second else "mel frame")
    mse = float(np.mean((mel - reconstruction) ** 2))
    figure.suptitle(f"{title}  (MSE {mse:.2f} dB^2, {len(np.unique(codes))} distinct codes)")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=100)
    plt.close(figure)
    return out_path
