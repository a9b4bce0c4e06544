"""Encode a dataset into codes ``derived/tokens/vqvae/vqvae_<stem>.npy`` through the runner, from the audio.

No mel files are needed: each recording is streamed, time-expanded, turned into mel frames
and cut into model windows in worker processes (``mel_windows``), encoded in batches of equal
windows (``encoder``), and each window's own codes appended to the file's output. Per call
(``calls``): representation ``vqvae-calls``, each call's codes one after another plus the call
index (``bat_core.calls``), and ``derived/calls/vqvae-calls.parquet``, one row per call.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import torch

from bat_core.calls import CallSelection, per_call, per_call_tag, write_calls_table
from bat_core.dataset import Dataset
from bat_core.runner import AppendOutputs, RunOptions, run_to_store
from bat_core.store import RepresentationStore, RunSummary
from bat_vqvae.artefact import VQVAETokenizer
from bat_vqvae.encoder import CodeEncoder
from bat_vqvae.layout import FILE_PATTERN, representation, tokens_dir
from bat_vqvae.mel_windows import window_prepare


def arithmetic(device: torch.device) -> str:
    """What the codes were computed in: CUDA convolutions may use TF32, and their codes may differ."""
    if device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        return "fp32-tf32"
    return "fp32"


def vqvae_store(dataset: Dataset, tokenizer: VQVAETokenizer, model_id: str, *, tag: str | None = None,
                shard: tuple[int, int] | None = None, calls: CallSelection | None = None) -> RepresentationStore:
    config = {"weights": tokenizer.fingerprint, "model": asdict(tokenizer.config), "mel": asdict(tokenizer.mel_config),
              "arithmetic": arithmetic(tokenizer.device), **({"calls": calls.settings()} if calls else {})}
    tag = per_call_tag(tag, calls)
    return RepresentationStore(
        dataset.paths, representation(tag), tokens_dir(dataset.paths, tag), config,
        file_pattern=FILE_PATTERN, model_id=model_id, packages=("bat-core", "bat-vqvae"), kind="tokens",
        codebook_size=tokenizer.config.codes, shard=shard,
    )


def encode_dataset(
    dataset: Dataset,
    tokenizer: VQVAETokenizer,
    model_id: str,
    *,
    overwrite: bool = False,
    options: RunOptions = RunOptions(),
    shard: tuple[int, int] | None = None,
    tag: str | None = None,
    calls: CallSelection | None = None,
) -> RunSummary:
    """Codes per file (int16, ``(T', F')`` or ``(T',)`` by the code layout), resumable; a file that cannot be read or encoded is a failed row.

    ``shard`` names this process's share for the store (its journal and lock); ``dataset`` is already that
    share (``Dataset.select(shard=...)``). ``calls``: each call encoded alone (its span plus context, widened
    with the recording's audio to the model's receptive field), one after another."""
    config = tokenizer.config
    mel_config = tokenizer.mel_config
    store = vqvae_store(dataset, tokenizer, model_id, tag=tag, shard=shard, calls=calls)
    prepare = window_prepare(mel_config, tokenizer.normalizer, config.stride, config.receptive_field)

    def codes(output):
        return AppendOutputs(output, lambda info: mel_config.frames_per_second(info.conversion) / config.stride,
                             stride=config.stride, extra=config.manifest_extra())

    assembler = lambda item, output: codes(output)  # noqa: E731
    if calls is not None:
        shortest = (config.receptive_field - 1) * mel_config.hop_length + mel_config.n_fft  # model-rate samples
        prepare, assembler = per_call(prepare, codes, calls, min_samples=shortest,
                                      empty=np.zeros((0, *config.code_tail), dtype=np.int16))
    summary = run_to_store(dataset, store, prepare, assembler, CodeEncoder(tokenizer),
                           options=replace(options, description=options.description or "encode"), overwrite=overwrite)
    if calls is not None:
        write_calls_table(store)
    return summary
