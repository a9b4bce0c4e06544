"""The worker side: the streamed filterbank, the model windows, and what a worker imports."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from transformers import ASTFeatureExtractor

from bat_ast_embed.filterbank import FilterbankSpec, FilterbankStream, filterbank
from bat_ast_embed.pieces import WindowPlan, time_patches
from bat_core.batching import bucket_length


@pytest.fixture(scope="module")
def extractor(tiny_ast):
    return ASTFeatureExtractor.from_pretrained(tiny_ast)


def extractor_frames(extractor, samples: np.ndarray) -> np.ndarray:
    """What the checkpoint's extractor makes of a whole clip, unpadded (a clip under one frame padded to one)."""
    if len(samples) < 400:
        samples = np.pad(samples, (0, 400 - len(samples)))
    extractor.max_length = 1 + (len(samples) - 400) // 160
    return extractor(samples, sampling_rate=16_000, return_tensors="np")["input_values"][0]


def streamed(spec: FilterbankSpec, samples: np.ndarray, block_sizes) -> np.ndarray:
    bounds = np.cumsum([0, *block_sizes])
    blocks = [samples[a:b] for a, b in zip(bounds[:-1], bounds[1:])] + [samples[bounds[-1]:]]
    frames = list(FilterbankStream(spec).frames_of(iter(blocks)))
    return np.concatenate(frames)


@pytest.mark.parametrize("length", [1, 100, 399, 400, 401, 559, 560, 721, 48_077])
def test_streamed_filterbank_equals_the_extractor_on_whole_clips(extractor, length):
    rng = np.random.default_rng(length)
    samples = (0.2 * rng.standard_normal(length)).astype(np.float32)
    spec = FilterbankSpec.from_extractor(pickle.loads(pickle.dumps(extractor)))
    expected = extractor_frames(extractor, samples)
    assert expected.shape == (max(1, 1 + (length - 400) // 160), 32)
    np.testing.assert_allclose(filterbank(samples, spec), expected, rtol=1e-6, atol=1e-6)
    for block in (37, 160, 399, 1000, 4096):  # many blocks: each carries its last 240 samples to the next
        np.testing.assert_allclose(streamed(spec, samples, [block] * (length // block)), expected, rtol=1e-6, atol=1e-6)
    uneven = rng.integers(1, 3000, size=64)
    uneven = uneven[np.cumsum(uneven) <= length]
    np.testing.assert_allclose(streamed(spec, samples, uneven), expected, rtol=1e-6, atol=1e-6)


def test_spec_travels_as_plain_data_and_pads_like_the_extractor(extractor):
    spec = FilterbankSpec.from_extractor(extractor)
    assert isinstance(spec.mel_filters, np.ndarray) and isinstance(spec.mean, float)
    again = pickle.loads(pickle.dumps(spec))
    assert again.describe() == spec.describe()
    assert spec.pad_value == pytest.approx(float(extractor.normalize(np.zeros(1))[0]))


def previous_windows(n_frames: int, limit: int, bucket: int | None) -> list[tuple[int, int, int]]:
    """(start, valid frames, run length) as bat-ast-embed 0.1 cut them."""
    hop = time_patches(limit) * 10
    starts = [0] if n_frames <= limit else list(range(0, n_frames - limit + hop, hop))
    cut = []
    for start in starts:
        valid = len(range(n_frames)[start:start + limit])
        if valid:
            cut.append((start, valid, limit if bucket is None else bucket_length(valid, bucket, 16, limit)))
    return cut


@pytest.mark.parametrize("limit,bucket", [(128, None), (128, 16), (1024, None), (1024, 64), (64, None), (256, 64)])
def test_windows_cut_where_they_did_before(limit, bucket):
    plan = WindowPlan(limit, bucket=bucket)
    for n_frames in (1, 15, 16, 17, limit - 1, limit, limit + 1, 2 * limit, 3 * limit + 7, 10 * limit + 5):
        frames = np.arange(n_frames, dtype=np.float32)[:, None].repeat(2, axis=1)
        for block in (7, 100, n_frames):
            blocks = [frames[i:i + block] for i in range(0, n_frames, block)]
            pieces = list(plan.pieces(iter(blocks)))
            got = [(int(piece.data[0, 0]), len(piece.data), piece.length) for piece in pieces]
            assert got == previous_windows(n_frames, limit, bucket), (n_frames, block)
            assert all(piece.meta == len(piece.data) for piece in pieces)
            for piece in pieces:  # a window's frames are the stream's own, in order
                np.testing.assert_array_equal(piece.data[:, 0], np.arange(piece.data[0, 0], piece.data[0, 0] + len(piece.data)))


def test_prepare_in_a_worker_imports_no_torch(tiny_ast, demo_root, tmp_path):
    from bat_ast_embed import ASTEmbedder, EmbedConfig

    embedder = ASTEmbedder.from_pretrained(tiny_ast, EmbedConfig(max_frames="auto"), device="cpu")
    pickled = tmp_path / "prepare.pickle"
    pickled.write_bytes(pickle.dumps(embedder.prepare()))
    code = f"""
import json, pickle, sys
from bat_core.dataset import Dataset
from bat_core.runner import FileInfo, Piece
prepare = pickle.loads(open({str(pickled)!r}, "rb").read())
messages = list(prepare(Dataset.from_root({str(demo_root)!r})[0]))
print(json.dumps({{
    "pieces": sum(isinstance(m, Piece) for m in messages), "info": isinstance(messages[-1], FileInfo),
    "heavy": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")
                    or m.startswith("transformers.models.audio_spectrogram_transformer")),
}}))
"""
    result = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert result["pieces"] >= 1 and result["info"]
    assert result["heavy"] == []
