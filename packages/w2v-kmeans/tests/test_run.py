"""``run``: one encoder pass, the tokens of fit + encode, a cache that resumes and is never stale, shards."""

import sys

import numpy as np
import pytest

from bat_core.dataset import Dataset
from bat_core.errors import BatError
from bat_core.runner import RunOptions
from bat_core.store import read_manifest
from bat_core.testing import StrategyContract, make_tiny_speech_encoder
from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer, encode_dataset, fit_codebook, run_pipeline
from bat_w2v_kmeans.codebook import Codebook, CodebookExistsError

K, FIT_FRAMES = 8, 500


def tokenizer(model_dir, **encoder_options):
    return W2VKMeansTokenizer(SpeechEncoder.from_pretrained(model_dir, device="cpu", **encoder_options))


def tokens_in(derived):
    return {path.name: np.load(path) for path in sorted((derived / "tokens").glob("w2v_kmeans_*.npy"))}


def options(workers=0):
    return RunOptions(workers=workers, show_progress=False)


@pytest.mark.parametrize("workers", [0, 2])
def test_run_gives_the_tokens_of_fit_then_encode_with_one_encoder_pass(tiny_wav2vec2, short_root, tmp_path, workers,
                                                                       monkeypatch):
    from bat_w2v_kmeans import forward

    windows = []
    original = forward.OwnedFrames.__call__
    monkeypatch.setattr(forward.OwnedFrames, "__call__", lambda self, batch: windows.append(len(batch)) or
                        original(self, batch))
    monkeypatch.setattr(forward.Tokens, "__call__", lambda self, batch: pytest.fail("run encoded a window twice"))
    ran = Dataset.from_root(short_root, derived=tmp_path / "ran")
    result = run_pipeline(ran, tokenizer(tiny_wav2vec2), k=K, max_fit_frames=FIT_FRAMES, options=options(workers))
    assert result.fitted and (result.tokens.given, result.tokens.done) == (8, 8)
    assert result.codebook_dir == tmp_path / "ran" / "models" / "w2v_kmeans"
    assert not (tmp_path / "ran" / "cache" / "w2v_kmeans_frames").exists()  # removed once the run completed
    monkeypatch.undo()

    separate = Dataset.from_root(short_root, derived=tmp_path / "separate")
    fit_codebook(separate, tokenizer(tiny_wav2vec2), k=K, max_fit_frames=FIT_FRAMES, options=options(workers))
    encoder = W2VKMeansTokenizer.from_pretrained(tmp_path / "separate" / "models" / "w2v_kmeans", device="cpu")
    assert encode_dataset(separate, encoder, options=options(workers)).done == 8
    np.testing.assert_array_equal(result.codebook.centroids, encoder.codebook.centroids)
    ran_tokens, separate_tokens = tokens_in(tmp_path / "ran"), tokens_in(tmp_path / "separate")
    assert ran_tokens.keys() == separate_tokens.keys() and len(ran_tokens) == 8
    for name in ran_tokens:
        np.testing.assert_array_equal(ran_tokens[name], separate_tokens[name])
    # the same settings: tokens of run and encode are interchangeable (same config hash)
    manifests = [read_manifest(tmp_path / d / "manifests" / "w2v_kmeans.parquet") for d in ("ran", "separate")]
    assert set(manifests[0].config_hash) == set(manifests[1].config_hash)


def _interrupt_after(monkeypatch, files):
    """Stop the run (as Ctrl-C or a kill would) when ``files`` files have their frames cached."""
    from bat_w2v_kmeans import sinks

    original = sinks.CachingSampleSink.done
    seen = []

    def done(self, item, info):
        original(self, item, info)
        seen.append(item.file_name)
        if len(seen) == files:
            raise KeyboardInterrupt

    monkeypatch.setattr(sinks.CachingSampleSink, "done", done)


def test_a_stopped_run_resumes_from_its_cache_with_the_same_codebook_and_tokens(tiny_wav2vec2, short_root, tmp_path,
                                                                                 monkeypatch):
    from bat_w2v_kmeans import forward

    # batches of one window: frames then never depend on which windows were still to do
    clean = Dataset.from_root(short_root, derived=tmp_path / "clean")
    expected = run_pipeline(clean, tokenizer(tiny_wav2vec2, batch_size=1), k=K, max_fit_frames=FIT_FRAMES,
                            options=options())
    stopped = Dataset.from_root(short_root, derived=tmp_path / "stopped")
    with monkeypatch.context() as patch:
        _interrupt_after(patch, 3)
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(stopped, tokenizer(tiny_wav2vec2, batch_size=1), k=K, max_fit_frames=FIT_FRAMES,
                         options=options())
    cache = read_manifest(tmp_path / "stopped" / "cache" / "w2v_kmeans_frames" / "manifests" / "frames.parquet")
    assert sorted(cache.file_name) == ["rec_0.wav", "rec_1.wav", "rec_2.wav"] and set(cache.status) == {"ok"}
    assert not (tmp_path / "stopped" / "models" / "w2v_kmeans").exists()

    windows = []
    original = forward.OwnedFrames.__call__
    monkeypatch.setattr(forward.OwnedFrames, "__call__", lambda self, batch: windows.extend(p.file for p in batch) or
                        original(self, batch))
    resumed = run_pipeline(stopped, tokenizer(tiny_wav2vec2, batch_size=1), k=K, max_fit_frames=FIT_FRAMES,
                           options=options(2))
    assert len(set(windows)) == 5  # only the files the stopped run had not cached went through the encoder
    np.testing.assert_array_equal(resumed.codebook.centroids, expected.codebook.centroids)
    assert resumed.codebook.info.files_done == 8 and resumed.codebook.info.frames_seen == expected.codebook.info.frames_seen
    for name, tokens in tokens_in(tmp_path / "clean").items():
        np.testing.assert_array_equal(tokens_in(tmp_path / "stopped")[name], tokens)
    assert not (tmp_path / "stopped" / "cache" / "w2v_kmeans_frames").exists()


def test_a_recording_replaced_after_a_stopped_run_fails_instead_of_reusing_its_frames(tiny_wav2vec2, short_root,
                                                                                      monkeypatch):
    from bat_w2v_kmeans import tokenizer as tokenizer_module

    dataset = Dataset.from_root(short_root)
    with monkeypatch.context() as patch:  # stopped after every frame is cached, before the k-means
        patch.setattr(tokenizer_module, "fit_kmeans", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(dataset, tokenizer(tiny_wav2vec2), k=K, max_fit_frames=FIT_FRAMES, options=options())
    (short_root / "data" / "audio" / "rec_2.wav").write_text("not a recording any more\n" * 50)
    result = run_pipeline(dataset, tokenizer(tiny_wav2vec2), k=K, max_fit_frames=FIT_FRAMES, options=options())
    assert (result.tokens.done, result.tokens.failed) == (7, 1)
    name, reason = result.tokens.failures[0]
    assert name == "rec_2.wav" and "cannot decode" in reason
    assert result.codebook.info.failed_files == [["rec_2.wav", reason]]
    manifest = read_manifest(dataset.paths.manifest_path("w2v_kmeans"))
    assert manifest.set_index("file_name").loc["rec_2.wav", "status"] == "failed"
    assert not (dataset.paths.tokens_dir / "w2v_kmeans_rec_2.npy").exists()


def test_rerunning_a_completed_run_uses_its_codebook_and_other_settings_need_overwrite(tiny_wav2vec2, short_root):
    dataset = Dataset.from_root(short_root)
    first = run_pipeline(dataset, tokenizer(tiny_wav2vec2), k=K, max_fit_frames=FIT_FRAMES, options=options())
    again = run_pipeline(dataset, tokenizer(tiny_wav2vec2), k=K, max_fit_frames=FIT_FRAMES, options=options())
    assert not again.fitted and (again.tokens.skipped, again.tokens.done) == (8, 0)
    with pytest.raises(CodebookExistsError, match="differs in: k.*--overwrite"):
        run_pipeline(dataset, tokenizer(tiny_wav2vec2), k=K + 1, max_fit_frames=FIT_FRAMES, options=options())
    replaced = run_pipeline(dataset, tokenizer(tiny_wav2vec2), k=K + 1, max_fit_frames=FIT_FRAMES, overwrite=True,
                            options=options())
    assert replaced.fitted and replaced.codebook.info.k == K + 1 and replaced.tokens.done == 8
    assert replaced.tokens.stale == 8 and "codebook" in replaced.tokens.stale_keys
    assert Codebook.load(first.codebook_dir).info.k == K + 1
    with pytest.raises(CodebookExistsError, match="--overwrite"):
        fit_codebook(dataset, tokenizer(tiny_wav2vec2), k=K, max_fit_frames=FIT_FRAMES, options=options())


def test_shards_need_a_codebook_and_together_equal_one_run(tiny_wav2vec2, short_root, tmp_path):
    whole = Dataset.from_root(short_root, derived=tmp_path / "whole")
    with pytest.raises(BatError, match="bat-w2v-kmeans fit"):
        run_pipeline(whole.select(shard=(0, 2)), tokenizer(tiny_wav2vec2), shard=(0, 2), options=options())
    fit_codebook(whole, tokenizer(tiny_wav2vec2), k=K, max_fit_frames=FIT_FRAMES, options=options())
    sizes = []
    for index in range(2):
        result = run_pipeline(whole.select(shard=(index, 2)), tokenizer(tiny_wav2vec2), shard=(index, 2),
                              options=options())
        assert not result.fitted
        sizes.append(result.tokens.done)
    assert sum(sizes) == 8 and 0 < sizes[0] < 8
    sharded = tokens_in(tmp_path / "whole")
    one = Dataset.from_root(short_root, derived=tmp_path / "one")
    encoder = W2VKMeansTokenizer.from_pretrained(tmp_path / "whole" / "models" / "w2v_kmeans", device="cpu")
    encode_dataset(one, encoder, options=options())
    assert sharded.keys() == tokens_in(tmp_path / "one").keys()
    for name, tokens in tokens_in(tmp_path / "one").items():
        np.testing.assert_array_equal(sharded[name], tokens)
    assert len(read_manifest(whole.paths.manifest_path("w2v_kmeans"))) == 8


class TestRunContract(StrategyContract):
    """bat-core's strategy contract, for ``run`` (fit + encode in one pass)."""

    representation = "w2v_kmeans"

    def model(self, models):
        if not (models / "tiny" / "config.json").is_file():
            make_tiny_speech_encoder(models / "tiny")
        return models / "tiny"

    def run_strategy(self, root, models, workers=0, overwrite=False):
        result = run_pipeline(Dataset.from_root(root), tokenizer(self.model(models)), k=K, max_fit_frames=FIT_FRAMES,
                              overwrite=overwrite, options=options(workers))
        return result.tokens

    def command(self, root, models):
        return [sys.executable, "-m", "bat_w2v_kmeans.cli", "run", "--root", str(root), "--model",
                str(self.model(models)), "--k", str(K), "--max-fit-frames", str(FIT_FRAMES), "--device", "cpu", "-q",
                "--num-workers", "1"]
