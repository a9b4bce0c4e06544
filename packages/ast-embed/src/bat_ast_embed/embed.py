"""Embed a dataset through the bat-core runner and store: ``derived/ast_features/ast_<stem>.npy``.

Recordings are decoded, converted and turned into filterbank windows in worker processes
(``ASTEmbedder.prepare``), batched by run length for the model in this process
(``ASTEmbedder.encoder``), and pooled per file into the store as windows arrive
(``ASTEmbedder.assembler``). ``tag`` puts a configuration beside the others:
representation ``ast-<tag>``, outputs in ``derived/ast_features/ast-<tag>/``. Per call (``calls``):
representation ``ast-calls``, one embedding row per call plus the call index (``bat_core.calls``),
and ``derived/calls/ast-calls.parquet``, one row per call.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bat_ast_embed.defaults import REPRESENTATION
from bat_ast_embed.embedder import ASTEmbedder
from bat_ast_embed.filterbank import FRAME_SAMPLES, HOP_SAMPLES
from bat_core.calls import CallSelection, per_call, per_call_tag, write_calls_table
from bat_core.dataset import Dataset
from bat_core.errors import BatError
from bat_core.paths import tagged
from bat_core.runner import RunOptions, run_to_store
from bat_core.store import RepresentationStore, RunSummary


def representation_name(tag: str | None = None) -> str:
    """``ast``, or ``ast-<tag>``: the manifest's name and, with a tag, the output folder's."""
    return tagged(REPRESENTATION, tag)


def ast_store(dataset: Dataset, embedder: ASTEmbedder, *, shard: tuple[int, int] | None = None,
              tag: str | None = None, calls: CallSelection | None = None) -> RepresentationStore:
    tag = per_call_tag(tag, calls)
    representation = representation_name(tag)
    output_dir = dataset.paths.ast_features_dir / representation if tag else dataset.paths.ast_features_dir
    settings = embedder.settings() if calls is None else {**embedder.settings(), "calls": calls.settings()}
    return RepresentationStore(
        dataset.paths, representation, output_dir, settings, file_pattern="ast_{stem}.npy",
        model_id=embedder.config.model, packages=("bat-core", "bat-ast-embed", "transformers"), kind="embedding",
        shard=shard,
    )


def embed_dataset(
    dataset: Dataset,
    embedder: ASTEmbedder,
    *,
    batch_size: int = 8,
    overwrite: bool = False,
    options: RunOptions = RunOptions(),
    shard: tuple[int, int] | None = None,
    tag: str | None = None,
    calls: CallSelection | None = None,
) -> RunSummary:
    """One pooled float32 ``(hidden,)`` per file (+ ``.mean``/``.sequence`` extras as configured); resumable,
    bad files become failed rows. ``shard=(I, N)`` embeds the files of shard I of N (a dataset already
    narrowed to that shard stays as it is) into its own journal, folded into the one manifest.

    ``calls``: each call embedded alone (its span plus context, widened with the recording's audio to the
    model's 16 frames), one row per call."""
    if shard is not None:
        dataset = dataset.select(shard=shard)
    store = ast_store(dataset, embedder, shard=shard, tag=tag, calls=calls)
    options = options if options.description else replace(options, description="embed")
    prepare, assembler = embedder.prepare(), lambda item, output: embedder.assembler(output)
    if calls is not None:
        if embedder.config.sequence:
            raise BatError("--sequence is for whole recordings; per call (--segments) each call gives one embedding")
        shortest = FRAME_SAMPLES + (embedder.plan.patch_size - 1) * HOP_SAMPLES  # one patch of frames: never zeros
        prepare, assembler = per_call(prepare, embedder.assembler, calls, min_samples=shortest,
                                      empty=np.zeros((0, embedder.model.config.hidden_size), dtype=np.float32))
    summary = run_to_store(dataset, store, prepare, assembler, embedder.encoder(batch_size), options=options,
                           overwrite=overwrite)
    if calls is not None:
        write_calls_table(store)
    return summary
