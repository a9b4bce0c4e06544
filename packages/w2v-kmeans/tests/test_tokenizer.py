"""The library: fit, encode, in-memory tokens, provenance, refusals."""

import json

import numpy as np
import pytest

from bat_core.audio import load_audio
from bat_core.dataset import Dataset
from bat_core.errors import BatError, ConfigMismatchError, ModelNotFoundError, NonFiniteError
from bat_core.runner import RunOptions
from bat_core.store import read_manifest
from bat_core.testing import make_tiny_ast, make_tiny_speech_encoder, write_long_recording, write_project
from bat_core.time_expansion import TimeExpansion
from bat_w2v_kmeans import SpeechEncoder, W2VKMeansTokenizer, encode_dataset, run_lengths
from bat_w2v_kmeans.tokenizer import NotEnoughFramesError

INLINE = RunOptions(workers=0, show_progress=False)
TWO_WORKERS = RunOptions(workers=2, show_progress=False)


def fitted(model_dir, root, layer=None, seed=0, k=8, options=INLINE, **encoder_options):
    tokenizer = W2VKMeansTokenizer(SpeechEncoder.from_pretrained(model_dir, layer=layer, device="cpu", **encoder_options))
    tokenizer.fit(Dataset.from_root(root), k=k, max_fit_frames=500, seed=seed, options=options)
    return tokenizer


def tokens_of(root, tag=None):
    folder = root / "derived" / "tokens" / (tag or "")
    return {path.name: np.load(path) for path in sorted(folder.glob("w2v_kmeans_*.npy")) if ".runs" not in path.name}


@pytest.mark.parametrize("kind", ["tiny_wav2vec2", "tiny_hubert"])
def test_fit_encode_save_load(kind, request, short_root, tmp_path):
    model_dir = request.getfixturevalue(kind)
    tokenizer = fitted(model_dir, short_root)
    info = tokenizer.codebook.info
    assert info.k == 8 and info.fit_frames == 500 and info.frames_seen > 500 and info.inertia > 0
    assert (info.files_given, info.files_done, info.failed_files) == (8, 8, [])
    assert info.time_expansion == "auto" and info.model_sample_rate == 16_000 and info.samples_per_frame == 320
    assert info.precision == "float32" and info.window_samples == 15 * 16_000
    item = Dataset.from_root(short_root)[0]
    recording = load_audio(item.path)
    tokens = tokenizer.encode(recording.samples, recording.sample_rate)
    assert tokens.dtype == np.int16 and tokens.min() >= 0 and tokens.max() < 8
    # time alignment: one token per 320 model samples = 320/16000/15 s of original audio
    assert len(tokens) == pytest.approx(recording.seconds * 16_000 * 15 / 320, abs=2)
    tokenizer.save(tmp_path / "codebook")
    loaded = W2VKMeansTokenizer.from_pretrained(tmp_path / "codebook", device="cpu")
    np.testing.assert_array_equal(loaded.encode(recording.samples, recording.sample_rate), tokens)
    config = json.loads((tmp_path / "codebook" / "config.json").read_text())
    assert config["model_id"] == str(model_dir) and config["files_given"] == 8


def test_same_seed_same_codebook_other_seed_other_and_workers_fit_the_same(tiny_wav2vec2, short_root):
    a, b, c = fitted(tiny_wav2vec2, short_root), fitted(tiny_wav2vec2, short_root, options=TWO_WORKERS), \
        fitted(tiny_wav2vec2, short_root, seed=1)
    np.testing.assert_array_equal(a.codebook.centroids, b.codebook.centroids)
    assert not np.array_equal(a.codebook.centroids, c.codebook.centroids)


def test_workers_give_the_same_tokens_as_inline(tiny_wav2vec2, short_root, tmp_path):
    tokenizer = fitted(tiny_wav2vec2, short_root)
    inline = Dataset.from_root(short_root, derived=tmp_path / "inline")
    workers = Dataset.from_root(short_root, derived=tmp_path / "workers")
    assert encode_dataset(inline, tokenizer, options=INLINE).done == 8
    assert encode_dataset(workers, tokenizer, options=TWO_WORKERS).done == 8
    one = {p.name: np.load(p) for p in (tmp_path / "inline" / "tokens").glob("*.npy")}
    two = {p.name: np.load(p) for p in (tmp_path / "workers" / "tokens").glob("*.npy")}
    assert one.keys() == two.keys() and len(one) == 8
    for name in one:
        np.testing.assert_array_equal(one[name], two[name])


def test_in_memory_encode_equals_the_runner_on_a_file_longer_than_a_window(tiny_wav2vec2, tmp_path):
    root = tmp_path / "long"
    write_long_recording(root / "data" / "audio" / "long.wav", seconds=1.2, sample_rate=250_000)
    write_project(root, {})  # annotations only: the recording is already there
    (root / "data" / "annotations.csv").write_text("File Name\nlong.wav\n")
    tokenizer = fitted(tiny_wav2vec2, root, window_seconds=3.0)
    assert tokenizer.encoder.window == 48_000 and tokenizer.encoder.hop == 32_000
    dataset = Dataset.from_root(root)
    assert encode_dataset(dataset, tokenizer, options=INLINE).done == 1
    stored = tokens_of(root)["w2v_kmeans_long.npy"]
    recording = load_audio(dataset[0].path)
    np.testing.assert_array_equal(tokenizer.encode(recording.samples, recording.sample_rate), stored)
    assert len(stored) == pytest.approx(1.2 * 15 * 50, abs=2)  # 18 s of model audio in 3 s windows: one per frame
    frames, conversion = tokenizer.frames(recording.samples, recording.sample_rate)
    assert frames.shape == (len(stored), 32) and conversion.time_expansion == 15
    np.testing.assert_array_equal(tokenizer.assign(frames), stored)


def test_layer_choice_changes_features(tiny_wav2vec2):
    samples = np.random.default_rng(0).standard_normal(16_000).astype(np.float32)
    plain = TimeExpansion.parse("1")

    def frames(layer):
        encoder = SpeechEncoder.from_pretrained(tiny_wav2vec2, layer=layer, device="cpu")
        return W2VKMeansTokenizer(encoder, plain).frames(samples, 16_000)[0]

    last, two, zero = frames(None), frames(2), frames(0)
    assert last.shape == zero.shape == (49, 32)
    np.testing.assert_allclose(two, last, rtol=1e-5, atol=1e-5)  # hidden_states[2] is the last layer of two
    assert not np.allclose(zero, last)
    with pytest.raises(ConfigMismatchError, match="--layer"):
        SpeechEncoder.from_pretrained(tiny_wav2vec2, layer=5, device="cpu")


def test_frames_do_not_depend_on_batch_mates(tiny_wav2vec2, tiny_hubert, tmp_path):
    from bat_core.windows import Span
    from bat_w2v_kmeans.forward import OwnedFrames

    rng = np.random.default_rng(0)
    unmasked = make_tiny_speech_encoder(tmp_path / "no_mask", "hubert", attention_mask=False)  # like hubert-base
    whole = Span(0, 0.0, float("inf"))
    for model_dir in (tiny_wav2vec2, tiny_hubert, unmasked):
        encoder = SpeechEncoder.from_pretrained(model_dir, device="cpu")
        assert encoder.uses_attention_mask == (model_dir != unmasked)
        maker = encoder.pieces()
        short = maker.piece(rng.standard_normal(5_000).astype(np.float32), whole)
        other = maker.piece(rng.standard_normal(5_100).astype(np.float32), whole)
        assert short.length == other.length  # one bucket: they may share a batch
        alone = OwnedFrames(encoder)([short])()[0]
        together = OwnedFrames(encoder)([other, short, other])()[1]
        np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-5)
        assert len(alone) == encoder.frame_count(5_000)


def test_a_failing_model_call_fails_only_its_file(tiny_wav2vec2, make_short_project, tmp_path, monkeypatch):
    from bat_w2v_kmeans import forward

    root = make_short_project(tmp_path / "eight")
    tokenizer = fitted(tiny_wav2vec2, root)
    original = forward.Tokens.__call__

    def poisoned(self, batch):  # file 3's windows break the model, whatever shares their batch
        if any(piece.file == 3 for piece in batch):
            raise RuntimeError("the model cannot take this window")
        return original(self, batch)

    monkeypatch.setattr(forward.Tokens, "__call__", poisoned)
    summary = encode_dataset(Dataset.from_root(root), tokenizer, options=INLINE)
    assert (summary.given, summary.done, summary.failed) == (8, 7, 1)
    assert summary.failures[0][0] == "rec_3.wav" and "cannot take this window" in summary.failures[0][1]


def test_fit_accounts_for_failed_files_and_refuses_too_few_frames(tiny_wav2vec2, short_root, tmp_path):
    from bat_core.testing import add_bad_files

    expected = add_bad_files(short_root)
    tokenizer = fitted(tiny_wav2vec2, short_root)
    info = tokenizer.codebook.info
    assert (info.files_given, info.files_done, info.files_failed) == (15, 9, 6)
    reasons = dict(info.failed_files)
    assert set(reasons) == set(expected) and all(text in reasons[name] for name, text in expected.items())
    with pytest.raises(BatError, match="fewer than --k"):
        fitted(tiny_wav2vec2, short_root, k=600)  # refused before any work
    one = write_project(tmp_path / "one", {"rec.wav": (load_audio(short_root / "data" / "audio" / "rec_0.wav").samples,
                                                       250_000)})
    with pytest.raises(NotEnoughFramesError, match=r"only \d+ frames from 1 of 1 files: too few for k=400"):
        fitted(tiny_wav2vec2, one, k=400)


def test_bad_files_become_failed_rows_resume_and_dedup(tiny_wav2vec2, short_root):
    from bat_core.testing import add_bad_files

    tokenizer = fitted(tiny_wav2vec2, short_root)
    expected = add_bad_files(short_root)
    dataset = Dataset.from_root(short_root)
    summary = encode_dataset(dataset, tokenizer, dedup=True, options=TWO_WORKERS)
    assert (summary.given, summary.done, summary.failed) == (15, 9, 6)
    for name, text in expected.items():
        assert text in dict(summary.failures)[name]
    manifest = read_manifest(dataset.paths.manifest_path("w2v_kmeans"))
    row = manifest[manifest.status == "ok"].iloc[0]
    tokens = np.load(dataset.paths.derived / row["output_path"])
    assert row["output_path"].startswith("tokens/w2v_kmeans_") and tokens.ndim == 1 and row["kind"] == "tokens"
    assert row["frames_per_second"] == pytest.approx(16_000 * 15 / 320) and row["codebook_size"] == 8
    assert len(tokens) == pytest.approx(row["seconds"] * row["frames_per_second"], abs=2)
    runs = np.load((dataset.paths.derived / row["output_path"]).with_suffix("").with_suffix(".runs.npy"))
    np.testing.assert_array_equal(np.repeat(runs[:, 0], runs[:, 1]), tokens)
    again = encode_dataset(dataset, tokenizer, dedup=True, options=INLINE)
    assert (again.skipped, again.done, again.failed) == (9, 0, 6)


def test_a_new_codebook_or_precision_makes_earlier_tokens_stale(tiny_wav2vec2, short_root, monkeypatch):
    import torch

    from bat_w2v_kmeans import encoder as encoder_module

    dataset = Dataset.from_root(short_root)
    first = fitted(tiny_wav2vec2, short_root)
    assert encode_dataset(dataset, first, options=INLINE).done == 8
    other = fitted(tiny_wav2vec2, short_root, seed=1)
    summary = encode_dataset(dataset, other, options=INLINE)
    assert (summary.done, summary.stale) == (8, 8) and "codebook" in summary.stale_keys
    assert "precision" not in summary.stale_keys
    assert encode_dataset(dataset, other, options=INLINE).skipped == 8
    # the same codebook run in another arithmetic (float64 stands in for bf16, which this CPU may lack)
    monkeypatch.setattr(encoder_module, "compute_dtype", lambda device, precision: torch.float64)
    wider = W2VKMeansTokenizer(SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu"), codebook=other.codebook)
    assert wider.encoder.precision == "float64"
    summary = encode_dataset(dataset, wider, options=INLINE)
    assert (summary.done, summary.stale, summary.stale_keys) == (8, 8, ["precision"])


def test_codebook_of_another_model_or_layer_is_refused(tiny_wav2vec2, tiny_hubert, short_root, tmp_path):
    fitted(tiny_wav2vec2, short_root).save(tmp_path / "codebook")
    with pytest.raises(ConfigMismatchError, match="model_fingerprint"):
        W2VKMeansTokenizer.from_pretrained(tmp_path / "codebook", model=str(tiny_hubert), device="cpu")
    with pytest.raises(ConfigMismatchError, match="layer"):
        W2VKMeansTokenizer.from_pretrained(tmp_path / "codebook", layer=1, device="cpu")
    with pytest.raises(ConfigMismatchError, match="time_expansion"):
        W2VKMeansTokenizer.from_pretrained(tmp_path / "codebook", expansion=TimeExpansion.parse("10"), device="cpu")
    with pytest.raises(ModelNotFoundError, match="--codebook"):
        W2VKMeansTokenizer.from_pretrained(tmp_path / "none", device="cpu")


def test_a_model_of_another_architecture_is_refused(tmp_path):
    ast = make_tiny_ast(tmp_path / "ast")
    with pytest.raises(ModelNotFoundError, match="wav2vec2, hubert, wavlm, data2vec-audio"):
        SpeechEncoder.from_pretrained(ast, device="cpu")


def test_a_checkpoint_missing_weights_is_refused(tiny_wav2vec2, tmp_path):
    import shutil

    from safetensors.numpy import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(tiny_wav2vec2, broken)
    weights = load_file(str(broken / "model.safetensors"))
    save_file({name: value for name, value in weights.items() if "layers.1." not in name}, str(broken / "model.safetensors"))
    with pytest.raises(ModelNotFoundError, match="random weights"):
        SpeechEncoder.from_pretrained(broken, device="cpu")


def test_the_fingerprint_covers_every_weight(tiny_wav2vec2):
    import torch

    encoder = SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu")
    model = encoder.model
    with torch.no_grad():
        next(model.encoder.layers[1].feed_forward.output_dense.parameters()).add_(1e-3)  # a late, small tensor
    assert SpeechEncoder(model, encoder.extractor, "changed").fingerprint() != encoder.fingerprint()


def test_run_lengths():
    np.testing.assert_array_equal(run_lengths(np.array([3, 3, 1, 1, 1, 3])), [[3, 2], [1, 3], [3, 1]])
    assert run_lengths(np.array([], dtype=np.int16)).shape == (0, 2)
    from bat_w2v_kmeans.assemble import RunLengths

    runs = RunLengths()
    for block in ([3, 3], [3, 1], [], [1, 1, 3]):
        runs.add(np.array(block, dtype=np.int16))
    np.testing.assert_array_equal(runs.rows(), [[3, 3], [1, 3], [3, 1]])


def test_offline_unknown_model_names_the_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="--model PATH"):
        SpeechEncoder.from_pretrained("facebook/wav2vec2-base", device="cpu")


def test_a_file_that_fails_half_way_leaves_nothing_in_the_sample(tmp_path):
    from bat_core.dataset import DatasetItem
    from bat_core.kmeans import HashedSample
    from bat_core.runner import FileInfo, Piece
    from bat_w2v_kmeans.sinks import SampleSink

    sample = HashedSample(100, 2, seed=0, dtype=np.float32)
    sink = SampleSink(sample)
    good, bad = DatasetItem("good.wav", tmp_path / "good.wav"), DatasetItem("bad.wav", tmp_path / "bad.wav")
    sink.add(bad, Piece(np.zeros(0), meta=0), np.ones((10, 2), dtype=np.float32))
    sink.add(good, Piece(np.zeros(0), meta=0), np.zeros((5, 2), dtype=np.float32))
    sink.fail(bad, "cannot decode after 10 frames")
    sink.done(good, FileInfo(seconds=1.0))
    assert sample.sample().shape == (5, 2) and not sample.sample().any() and sample.seen == 5
    assert sink.done_files == ["good.wav"] and sink.failures == [("bad.wav", "cannot decode after 10 frames")]
    with pytest.raises(NonFiniteError, match="NaN"):
        sink.add(good, Piece(np.zeros(0), meta=5), np.full((1, 2), np.nan, dtype=np.float32))


def test_non_finite_frames_fail_their_file_in_fit_and_encode(tiny_wav2vec2, short_root, monkeypatch):
    from bat_w2v_kmeans.encoder import SpeechEncoder as Encoder

    tokenizer = fitted(tiny_wav2vec2, short_root)
    original = Encoder.hidden_states

    def broken(self, batch):  # file 2's frames come out NaN (an overflow in half precision, say)
        hidden, counts = original(self, batch)
        for row, piece in enumerate(batch):
            if piece.file == 2:
                hidden[row, 1] = float("nan")
        return hidden, counts

    monkeypatch.setattr(Encoder, "hidden_states", broken)
    summary = encode_dataset(Dataset.from_root(short_root), tokenizer, options=INLINE)
    assert (summary.done, summary.failed) == (7, 1) and "NaN/inf" in summary.failures[0][1]
    codebook = tokenizer.fit(Dataset.from_root(short_root), k=8, max_fit_frames=500, options=INLINE)
    assert [name for name, _ in codebook.info.failed_files] == ["rec_2.wav"]
