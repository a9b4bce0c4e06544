"""Embed a dataset through the bat-core store: ``derived/ast_features/ast_<stem>.npy``."""

from __future__ import annotations

from dataclasses import asdict

from bat_ast_embed.embedder import ASTEmbedder, Features
from bat_core.audio import load_audio
from bat_core.batching import chunks
from bat_core.dataset import Dataset, DatasetItem
from bat_core.pipeline import iter_prepared, progress
from bat_core.store import RepresentationStore, RunSummary

REPRESENTATION = "ast"
FILES_PER_CHUNK = 64  # decoded filterbanks held at once; windows of a chunk are batched by length
FRAMES_PER_CHUNK = 60_000  # ...and at most this many filterbank frames (10 min of model time), for long recordings


def ast_store(dataset: Dataset, embedder: ASTEmbedder) -> RepresentationStore:
    return RepresentationStore(
        dataset.paths, REPRESENTATION, dataset.paths.ast_features_dir, asdict(embedder.config),
        file_pattern="ast_{stem}.npy", model_id=embedder.config.model,
        packages=("bat-core", "bat-ast-embed", "transformers"),
    )


def embed_dataset(
    dataset: Dataset,
    embedder: ASTEmbedder,
    *,
    batch_size: int = 8,
    overwrite: bool = False,
    num_workers: int = 2,
    show_progress: bool = True,
) -> RunSummary:
    """One pooled float32 ``(hidden,)`` per file (+ ``.mean``/``.sequence`` extras as configured)."""
    store = ast_store(dataset, embedder)
    todo = store.begin(list(dataset), overwrite=overwrite)

    def prepare(item: DatasetItem) -> Features:
        recording = load_audio(item.path)
        return embedder.features(recording.samples, recording.sample_rate)

    with store:
        prepared = iter_prepared(todo, prepare, num_workers)
        bar = progress(prepared, len(todo), "embed", show_progress)
        for chunk in chunks(bar, FILES_PER_CHUNK, FRAMES_PER_CHUNK, _frames_held):
            for item, _, reason in chunk:
                if reason is not None:
                    store.fail(item, reason)
            _write_chunk(store, embedder, [(item, features) for item, features, reason in chunk if reason is None], batch_size)
        return store.finish()


def _frames_held(prepared) -> int:
    _, features, _ = prepared
    return 0 if features is None else len(features.frames)


def _write_chunk(store: RepresentationStore, embedder: ASTEmbedder, chunk, batch_size: int) -> None:
    if not chunk:
        return
    embeddings = embedder.embed_features([features for _, features in chunk], batch_size)
    for (item, features), embedding in zip(chunk, embeddings):
        extras = {}
        if embedder.config.pool == "both":
            extras["mean"] = embedding.mean
        if embedder.config.sequence:
            extras["sequence"] = embedding.sequence
        store.write(
            item, embedding.pooled, seconds=features.seconds, conversion=features.conversion, extras=extras,
            extra={
                "pool": "pooler" if embedder.config.pool == "both" else embedder.config.pool,
                "layer": embedder.config.layer, "windows": embedding.windows, "run_frames": embedding.run_frames,
                "sequence_frames_per_second": embedder.sequence_frames_per_second(features.conversion),
            },
        )
