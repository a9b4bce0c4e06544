"""Encode a dataset's mels into codes ``derived/tokens/vqvae/vqvae_<stem>.npy`` through the store."""

from __future__ import annotations

from dataclasses import asdict, fields

import numpy as np

from bat_core.dataset import Dataset
from bat_core.mels import mel_rows
from bat_core.pipeline import progress
from bat_core.store import RepresentationStore, RunSummary
from bat_core.time_expansion import SignalConversion
from bat_vqvae.artefact import VQVAETokenizer

REPRESENTATION = "vqvae"
SIGNAL_FIELDS = [f.name for f in fields(SignalConversion)]


def vqvae_store(dataset: Dataset, tokenizer: VQVAETokenizer, model_id: str) -> RepresentationStore:
    config = {"weights": tokenizer.fingerprint, "model": asdict(tokenizer.config), "mel": asdict(tokenizer.mel_config)}
    return RepresentationStore(
        dataset.paths, REPRESENTATION, dataset.paths.tokens_dir / "vqvae", config,
        file_pattern="vqvae_{stem}.npy", model_id=model_id, packages=("bat-core", "bat-vqvae"),
    )


def encode_dataset(
    dataset: Dataset,
    tokenizer: VQVAETokenizer,
    model_id: str,
    *,
    overwrite: bool = False,
    num_workers: int = 2,
    show_progress: bool = True,
) -> RunSummary:
    """Codes per file (int16, ``(T', F')``); files whose mel failed become failed rows with the reason."""
    rows = mel_rows(dataset, tokenizer.mel_config, num_workers=num_workers, show_progress=show_progress)
    store = vqvae_store(dataset, tokenizer, model_id)
    todo = store.begin(list(dataset), overwrite=overwrite)
    with store:
        for item in progress(todo, len(todo), "encode", show_progress):
            row = rows.get(item.file_name)
            if row is None or row["status"] != "ok":
                store.fail(item, f"no mel spectrogram: {row['reason'] if row else 'not computed'}")
                continue
            try:
                codes = tokenizer.encode(np.load(dataset.paths.derived / row["output_path"]))
            except (OSError, ValueError) as error:
                store.fail(item, f"cannot encode its mel spectrogram: {error}")
                continue
            conversion = SignalConversion(**{name: row[name] for name in SIGNAL_FIELDS})
            store.write(
                item, codes, frames_per_second=row["frames_per_second"] / tokenizer.config.stride,
                seconds=row["seconds"], conversion=conversion,
                extra={"frequency_bins_per_code": tokenizer.config.stride, "codebook_size": tokenizer.config.codes},
            )
        return store.finish()
