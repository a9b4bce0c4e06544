"""The training corpus: every dataset file accounted for, as a stored mel or a reason it has none."""

from __future__ import annotations

from dataclasses import dataclass, field

from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, mel_rows
from bat_core.runner import RunOptions
from bat_vqvae.checkpoint import data_fingerprint
from bat_vqvae.mel_files import MelFile


@dataclass
class MelCorpus:
    files: dict[str, MelFile] = field(default_factory=dict)  # usable files by name, in dataset order
    sources: dict[str, str] = field(default_factory=dict)  # their recordings' source fingerprints
    failed: dict[str, str] = field(default_factory=dict)  # file name -> why it cannot be used

    def fingerprint(self) -> dict:
        return {"files": len(self.files), "fingerprint": data_fingerprint(self.sources)}


def mel_corpus(dataset: Dataset, mel_config: MelConfig, options: RunOptions = RunOptions()) -> MelCorpus:
    """Compute the missing mels through bat-core (resumable, in worker processes), then open each one's header."""
    rows = mel_rows(dataset, mel_config, options)
    corpus = MelCorpus()
    for item in dataset:
        row = rows.get(item.file_name)
        if row is None:
            corpus.failed[item.file_name] = "no mel spectrogram was computed for it"
        elif row["status"] != "ok":
            corpus.failed[item.file_name] = row["reason"]
        else:
            try:
                corpus.files[item.file_name] = MelFile.open(dataset.paths.derived / row["output_path"], mel_config.n_mels)
            except (OSError, ValueError) as error:
                corpus.failed[item.file_name] = f"its stored mel spectrogram cannot be read: {error}"
                continue
            corpus.sources[item.file_name] = row["source_fingerprint"]
    return corpus
