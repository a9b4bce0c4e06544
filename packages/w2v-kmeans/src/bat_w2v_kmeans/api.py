"""The commands as library functions (the CLI parses, calls these and prints): ``fit_codebook`` and
``run_pipeline``, ``fit`` then ``encode`` with one encoder pass over the corpus.

``run`` streams every recording through the encoder once; each window's own frames go both into the
k-means sample and into a frame cache (``bat_w2v_kmeans.frame_cache``); the codebook is fitted and
saved; tokens are then assigned from the cached frames (no second encoder pass) and the cache is
removed. The tokens are those of ``fit`` then ``encode``. A killed run resumes: frames already cached
are not computed again (they refill the sample), a saved codebook made with the same settings from
the same recordings is used as it is, finished token files are skipped.

Per call (``tokenizer.calls``) the codebook is fitted on the calls and the calls are encoded in a
second pass, with no frame cache: calls are a few percent of the audio, so two passes over them
cost less than caching, and the cache's blocks know nothing of calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bat_core.calls import per_call_tag
from bat_core.dataset import Dataset, DatasetItem, corpus_fingerprint
from bat_core.errors import BatError
from bat_core.paths import tagged
from bat_core.runner import RunOptions, StoreSink, run
from bat_core.store import RunSummary
from bat_w2v_kmeans.codebook import Codebook, CodebookExistsError, exists
from bat_w2v_kmeans.defaults import DEFAULT_K, DEFAULT_MAX_FIT_FRAMES, REPRESENTATION
from bat_w2v_kmeans.encode import default_codebook_dir, encode_dataset, token_assembler, token_store
from bat_w2v_kmeans.forward import CachedTokens, OwnedFrames, Tokens
from bat_w2v_kmeans.frame_cache import FrameCache
from bat_w2v_kmeans.sinks import CachingSampleSink, SampleSink
from bat_w2v_kmeans.tokenizer import W2VKMeansTokenizer, check_k, described


@dataclass
class PipelineResult:
    codebook: Codebook
    codebook_dir: Path
    fitted: bool  # False: a codebook already there (same settings and data, or a sharded run's) was used
    tokens: RunSummary


def refuse_existing(directory: Path, overwrite: bool) -> None:
    """Before any work: a codebook already in ``directory`` is replaced only with ``overwrite``."""
    if exists(directory) and not overwrite:
        raise CodebookExistsError(f"a codebook already exists in {directory}; pass --overwrite to replace it "
                                  "(or --codebook DIR / --tag NAME to keep both)")


def fit_codebook(dataset: Dataset, tokenizer: W2VKMeansTokenizer, codebook_dir: str | Path | None = None, *,
                 k: int = DEFAULT_K, max_fit_frames: int = DEFAULT_MAX_FIT_FRAMES, seed: int = 0,
                 overwrite: bool = False, options: RunOptions = RunOptions(), tag: str | None = None) -> Path:
    """``fit``: the codebook of ``dataset`` (of its calls in per-call mode), saved (an existing one only replaced
    with ``overwrite``)."""
    directory = Path(codebook_dir) if codebook_dir else default_codebook_dir(dataset.paths, per_call_tag(tag, tokenizer.calls))
    check_k(k, max_fit_frames)
    refuse_existing(directory, overwrite)
    tokenizer.fit(dataset, k=k, max_fit_frames=max_fit_frames, seed=seed, options=options)
    return tokenizer.save(directory, overwrite=overwrite)


def run_pipeline(dataset: Dataset, tokenizer: W2VKMeansTokenizer, codebook_dir: str | Path | None = None, *,
                 k: int = DEFAULT_K, max_fit_frames: int = DEFAULT_MAX_FIT_FRAMES, seed: int = 0, dedup: bool = False,
                 overwrite: bool = False, options: RunOptions = RunOptions(), shard: tuple[int, int] | None = None,
                 tag: str | None = None) -> PipelineResult:
    """``run``: fit a codebook and encode ``dataset`` with one encoder pass.

    With ``shard`` (``dataset`` already that shard's selection) the codebook must exist (fit does not
    shard): the shard is encoded with it."""
    directory = Path(codebook_dir) if codebook_dir else default_codebook_dir(dataset.paths, per_call_tag(tag, tokenizer.calls))
    check_k(k, max_fit_frames)
    if shard is not None:
        if not exists(directory):
            raise BatError(f"run --shard {shard[0]}/{shard[1]} needs a codebook in {directory}, made first by "
                           "`bat-w2v-kmeans fit` over the whole dataset (fit does not shard); then run the shards")
        tokenizer.use(Codebook.load(directory))
        summary = encode_dataset(dataset, tokenizer, dedup=dedup, overwrite=overwrite, options=options, shard=shard,
                                 tag=tag)
        return PipelineResult(tokenizer.codebook, directory, False, summary)

    items = list(dataset)
    cache = FrameCache(dataset, tagged(REPRESENTATION, tag), tokenizer.encoder, tokenizer.expansion)
    failures: dict[str, str] = {}
    fitted = False
    if exists(directory) and not overwrite:
        existing = Codebook.load(directory)
        wanted = tokenizer.info(k, seed=seed, max_fit_frames=max_fit_frames,
                                data_fingerprint=corpus_fingerprint(items)).fit_settings()
        differing = sorted(key for key, value in wanted.items() if existing.info.fit_settings().get(key) != value)
        fitted_on = existing.info.extra.get("fitted_on_calls") or {}
        if (fitted_on.get("segments_sha256"), fitted_on.get("context_s")) != (
                (tokenizer.calls.fingerprint, tokenizer.calls.context_s) if tokenizer.calls else (None, None)):
            differing.append("segments (the calls it was fitted on)")
        if differing:
            raise CodebookExistsError(
                f"a codebook made with other settings or recordings already exists in {directory} (differs in: "
                f"{', '.join(differing)}); pass --overwrite to replace it, --codebook DIR or --tag NAME to keep both, "
                "or `encode` with it")
        tokenizer.use(existing)  # a resumed run: the codebook it saved before it was stopped
    elif tokenizer.calls is not None or options.ray is not None:  # no frame cache: per call, or on Ray's actors
        tokenizer.fit(items, k=k, max_fit_frames=max_fit_frames, seed=seed, options=described(options, "run: fit"))
        tokenizer.save(directory, overwrite=overwrite)
        fitted = True
    else:
        failures = _fit_through_cache(items, tokenizer, cache, k=k, max_fit_frames=max_fit_frames, seed=seed,
                                      overwrite=overwrite, options=options)
        tokenizer.save(directory, overwrite=overwrite)
        fitted = True
    if tokenizer.calls is not None or options.ray is not None:
        summary = encode_dataset(dataset, tokenizer, dedup=dedup, overwrite=overwrite,
                                 options=described(options, "run: encode"), tag=tag)
        return PipelineResult(tokenizer.require_codebook(), directory, fitted, summary)
    summary = _tokens(dataset, tokenizer, cache, failures, dedup=dedup, overwrite=overwrite, options=options, tag=tag)
    cache.remove()
    return PipelineResult(tokenizer.require_codebook(), directory, fitted, summary)


def _fit_through_cache(items: Sequence[DatasetItem], tokenizer: W2VKMeansTokenizer, cache: FrameCache, *, k: int, max_fit_frames: int,
                       seed: int, overwrite: bool, options: RunOptions) -> dict[str, str]:
    """The one encoder pass: frames into the cache and the sample (files cached by a stopped run refill
    the sample from the cache), then k-means. Returns the files whose frames could not be made."""
    sample = tokenizer.new_sample(max_fit_frames, seed)
    store = cache.store
    todo = store.begin(items, overwrite=overwrite)
    sink = CachingSampleSink(store, cache.assembler(lambda info: tokenizer.frames_per_second(info.conversion)), sample)
    with store:
        run(todo, tokenizer.prepare(), sink, OwnedFrames(tokenizer.encoder), described(options, "run: frames"))
        store.finish()
    left = {item.file_name for item in todo}
    cached = [item for item in items if item.file_name not in left]
    refill = SampleSink(sample)
    if cached:
        run(cached, cache.prepare(cached), refill, None, _in_process(options, "run: cached frames"))
    failures = [*sink.samples.failures, *refill.failures]
    done = [*sink.samples.done_files, *refill.done_files]
    tokenizer.fit_sample(sample, k, seed, max_fit_frames, items, done, failures)
    return dict(failures)


def _tokens(dataset: Dataset, tokenizer: W2VKMeansTokenizer, cache: FrameCache, failures: dict[str, str], *,
            dedup: bool, overwrite: bool, options: RunOptions, tag: str | None) -> RunSummary:
    """Tokens of every file still to do: from its cached frames, or (not cached: a codebook made by an
    earlier run) through the encoder; a file whose frames could not be made fails with that reason."""
    store = token_store(dataset, tokenizer, dedup, tag)
    todo = store.begin(list(dataset), overwrite=overwrite)
    cached = cache.prepare(todo, failures)
    from_cache = [item for item in todo if item.file_name in cached.files or item.file_name in failures]
    fresh = [item for item in todo if item.file_name not in cached.files and item.file_name not in failures]
    centroids = tokenizer.require_codebook().centroids
    sink = StoreSink(store, token_assembler(tokenizer, dedup))
    with store:
        if from_cache:
            run(from_cache, cached, sink, CachedTokens(tokenizer.encoder, centroids), _in_process(options, "run: tokens"))
        if fresh:
            run(fresh, tokenizer.prepare(), sink, Tokens(tokenizer.encoder, centroids), described(options, "run: encode"))
        return store.finish()


def _in_process(options: RunOptions, description: str) -> RunOptions:
    """Cached frames need no decoding: read in this process, they skip the pickling of every 768-wide
    block between processes (measured: the tokens pass took 1.1 s inline, 1.8-2.7 s through workers)."""
    from dataclasses import replace

    return replace(described(options, description), workers=0)
