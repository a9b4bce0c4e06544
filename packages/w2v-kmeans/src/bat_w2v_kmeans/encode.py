"""Tokens for a dataset through the bat-core runner and store: ``derived/tokens/w2v_kmeans_<stem>.npy``
(``--tag NAME``: ``derived/tokens/w2v_kmeans-NAME/w2v_kmeans_<stem>.npy``). Per call (``tokenizer.calls``):
representation ``w2v_kmeans-calls``, each call's tokens one after another plus the call index
(``bat_core.calls``), and ``derived/calls/w2v_kmeans-calls.parquet``, one row per call."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bat_core.calls import CallAssembler, per_call_tag, write_calls_table
from bat_core.dataset import Dataset
from bat_core.errors import BatError
from bat_core.paths import ProjectPaths, tagged
from bat_core.runner import RunOptions, run_to_store
from bat_core.store import RepresentationStore, RunSummary
from bat_w2v_kmeans.assemble import TokenAssembler, run_lengths
from bat_w2v_kmeans.defaults import REPRESENTATION
from bat_w2v_kmeans.forward import Tokens
from bat_w2v_kmeans.tokenizer import W2VKMeansTokenizer, described

__all__ = ["default_codebook_dir", "encode_dataset", "run_lengths", "token_assembler", "token_store"]


def default_codebook_dir(paths: ProjectPaths, tag: str | None = None) -> Path:
    """``derived/models/w2v_kmeans`` (``--tag NAME``: ``w2v_kmeans-NAME``)."""
    return paths.models_dir / tagged(REPRESENTATION, tag)


def token_store(dataset: Dataset, tokenizer: W2VKMeansTokenizer, dedup: bool = False, tag: str | None = None,
                shard: tuple[int, int] | None = None) -> RepresentationStore:
    tag = per_call_tag(tag, tokenizer.calls)
    representation = tagged(REPRESENTATION, tag)
    output_dir = dataset.paths.tokens_dir if tag is None else dataset.paths.tokens_dir / representation
    codebook = tokenizer.require_codebook()
    return RepresentationStore(dataset.paths, representation, output_dir, tokenizer.token_config(dedup),
                               file_pattern=f"{REPRESENTATION}_{{stem}}.npy", model_id=codebook.info.model_id,
                               packages=("bat-core", "bat-w2v-kmeans", "transformers"), kind="tokens",
                               codebook_size=codebook.info.k, shard=shard)


def token_assembler(tokenizer: W2VKMeansTokenizer, dedup: bool):
    """Per file (or per call): windows stitched back with one token per frame, frames per second of the original
    recording."""
    codebook = tokenizer.require_codebook()
    extra = {"layer": tokenizer.encoder.layer_name, "k": codebook.info.k}
    if tokenizer.calls is not None and dedup:
        raise BatError("--dedup is for whole recordings; per call (--segments) each call's tokens are short: "
                       "run-length them from the calls table if needed")

    def tokens(output) -> TokenAssembler:
        return TokenAssembler(output, lambda info: tokenizer.frames_per_second(info.conversion),
                              tokenizer.encoder.samples_per_frame, dedup, extra)

    if tokenizer.calls is not None:
        return lambda item, output: CallAssembler(output, tokens, np.zeros(0, dtype=np.int16))
    return lambda item, output: tokens(output)


def encode_dataset(dataset: Dataset, tokenizer: W2VKMeansTokenizer, *, dedup: bool = False, overwrite: bool = False,
                   options: RunOptions = RunOptions(), shard: tuple[int, int] | None = None,
                   tag: str | None = None) -> RunSummary:
    """int16 tokens per file (resumable); bad files become failed rows. ``dataset`` is already the
    selection to encode (``Dataset.select(..., shard=...)``); ``shard`` names this writer's journal."""
    store = token_store(dataset, tokenizer, dedup, tag, shard)
    encoder = Tokens(tokenizer.encoder, tokenizer.require_codebook().centroids)
    summary = run_to_store(list(dataset), store, tokenizer.prepare(), token_assembler(tokenizer, dedup), encoder,
                           described(options, "encode"), overwrite=overwrite)
    if tokenizer.calls is not None:  # a shard or subset run folds every recording's current calls
        write_calls_table(store)
    return summary
