"""One recording encoded and decoded, drawn as input / reconstruction / codes: a notebook or the CLI calls this."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bat_core.dataset import Dataset
from bat_core.errors import AudioError, DatasetError
from bat_core.mels import mel_rows
from bat_core.runner import RunOptions
from bat_vqvae.artefact import VQVAETokenizer
from bat_vqvae.layout import reconstructions_dir
from bat_vqvae.plot import pyplot, render_reconstruction


@dataclass
class Reconstruction:
    file_name: str
    path: Path  # the PNG
    mse: float  # dB^2, whole file
    distinct_codes: int

    def line(self) -> str:
        return (f"reconstruction of {self.file_name}: MSE {self.mse:.2f} dB^2, {self.distinct_codes} distinct codes "
                f"-> {self.path}")


def reconstruct_file(dataset: Dataset, file: str, tokenizer: VQVAETokenizer, out: str | Path | None = None, *,
                     tag: str | None = None, options: RunOptions = RunOptions(workers=0)) -> Reconstruction:
    """Draw ``file`` (a File Name or its stem) to ``out`` (default ``derived/vqvae_reconstructions/<stem>.png``);
    its mel is computed into the store where missing."""
    pyplot()  # the plot extra, before any work
    matches = [item for item in dataset if file in (item.file_name, item.stem)]
    if not matches:
        raise DatasetError(f"{file!r} is not in {dataset.paths.annotations_csv}")
    item = matches[0]
    row = mel_rows(Dataset(dataset.paths, [item], dataset.label_columns), tokenizer.mel_config, options)[item.file_name]
    if row["status"] != "ok":
        raise AudioError(f"cannot compute the mel spectrogram of {item.file_name}: {row['reason']}")
    mel = np.load(dataset.paths.derived / row["output_path"], mmap_mode="r")
    codes = tokenizer.encode(mel)
    reconstruction = tokenizer.decode(codes, n_frames=mel.shape[1])
    path = Path(out) if out else reconstructions_dir(dataset.paths, tag) / f"{item.stem}.png"
    mel = np.asarray(mel)
    render_reconstruction(mel, reconstruction, codes, item.file_name, path, row["frames_per_second"])
    return Reconstruction(item.file_name, path, float(np.mean((mel - reconstruction) ** 2)), int(len(np.unique(codes))))
