"""Embed a dataset through the bat-core runner and store: ``derived/ast_features/ast_<stem>.npy``.

Recordings are decoded, converted and turned into filterbank windows in worker processes
(``ASTEmbedder.prepare``), batched by run length for the model in this process
(``ASTEmbedder.encoder``), and pooled per file into the store as windows arrive
(``ASTEmbedder.assembler``). ``tag`` puts a configuration beside the others:
representation ``ast-<tag>``, outputs in ``derived/ast_features/ast-<tag>/``.
"""

from __future__ import annotations

from dataclasses import replace

from bat_ast_embed.defaults import REPRESENTATION
from bat_ast_embed.embedder import ASTEmbedder
from bat_core.dataset import Dataset
from bat_core.paths import tagged
from bat_core.runner import RunOptions, run_to_store
from bat_core.store import RepresentationStore, RunSummary


def representation_name(tag: str | None = None) -> str:
    """``ast``, or ``ast-<tag>``: the manifest's name and, with a tag, the output folder's."""
    return tagged(REPRESENTATION, tag)


def ast_store(dataset: Dataset, embedder: ASTEmbedder, *, shard: tuple[int, int] | None = None,
              tag: str | None = None) -> RepresentationStore:
    representation = representation_name(tag)
    output_dir = dataset.paths.ast_features_dir / representation if tag else dataset.paths.ast_features_dir
    return RepresentationStore(
        dataset.paths, representation, output_dir, embedder.settings(), file_pattern="ast_{stem}.npy",
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
) -> RunSummary:
    """One pooled float32 ``(hidden,)`` per file (+ ``.mean``/``.sequence`` extras as configured); resumable,
    bad files become failed rows. ``shard=(I, N)`` embeds the files of shard I of N (a dataset already
    narrowed to that shard stays as it is) into its own journal, folded into the one manifest."""
    if shard is not None:
        dataset = dataset.select(shard=shard)
    store = ast_store(dataset, embedder, shard=shard, tag=tag)
    options = options if options.description else replace(options, description="embed")
    return run_to_store(dataset, store, embedder.prepare(), lambda item, output: embedder.assembler(output),
                        embedder.encoder(batch_size), options=options, overwrite=overwrite)
