"""The worker side: windows, per-window normalisation, bucketed lengths, and no model code in a worker."""

import pickle
import subprocess
import sys

import numpy as np

from bat_core.windows import Span
from bat_w2v_kmeans.pieces import WindowPieces, normalised, owned_frames

FRAME = 320


def maker(**changes) -> WindowPieces:
    settings = dict(window=16 * FRAME, hop=12 * FRAME, bucket=2 * FRAME, min_length=400, do_normalize=True)
    return WindowPieces(**{**settings, **changes})


def blocks(samples: np.ndarray, size: int):
    return iter([samples[start:start + size] for start in range(0, len(samples), size)])


def test_windows_are_normalised_each_on_its_own_and_bucketed():
    rng = np.random.default_rng(0)
    stream = (3 + 5 * rng.standard_normal(50 * FRAME)).astype(np.float32)
    pieces = list(maker()(blocks(stream, 777)))
    assert [p.meta.start for p in pieces] == list(range(0, 50 * FRAME - 4 * FRAME, 12 * FRAME))
    for piece in pieces:
        window = stream[piece.meta.start: piece.meta.start + 16 * FRAME]
        np.testing.assert_allclose(piece.data, (window - window.mean()) / window.std(), rtol=1e-4, atol=1e-4)
        assert piece.length % (2 * FRAME) == 0 or piece.length == 16 * FRAME
        assert len(piece.data) <= piece.length <= 16 * FRAME
    # the same pieces whatever the block size the stream arrived in
    again = list(maker()(blocks(stream, 5000)))
    for a, b in zip(pieces, again, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        assert a.meta == b.meta and a.length == b.length


def test_a_short_recording_is_padded_to_one_frame_and_unnormalised_extractors_are_respected():
    (piece,) = maker()(iter([np.ones(100, dtype=np.float32)]))
    assert len(piece.data) == 400 and piece.length == 2 * FRAME and not piece.data[100:].any()
    (raw,) = maker(do_normalize=False)(iter([np.full(1000, 2.0, dtype=np.float32)]))
    assert (raw.data == 2.0).all()
    assert normalised(np.zeros(10, dtype=np.float32), True).tolist() == [0.0] * 10  # silence stays finite


def test_owned_frames_tile_the_recording():
    stream = np.zeros(50 * FRAME, dtype=np.float32)
    positions = []
    for piece in maker()(iter([stream])):
        owned, first = owned_frames(piece.meta, len(piece.data) // FRAME, FRAME)
        positions.extend(range(first, first + owned.stop - owned.start))
    assert positions == list(range(50))
    assert owned_frames(Span(0, 0.0, float("inf")), 7, FRAME) == (slice(0, 7), 0)


def test_the_prepare_runs_in_a_process_without_torch(tiny_wav2vec2, short_root):
    from bat_core.dataset import Dataset
    from bat_core.time_expansion import TimeExpansion
    from bat_w2v_kmeans import SpeechEncoder

    prepare = SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu").prepare(TimeExpansion())
    item = Dataset.from_root(short_root)[0]
    code = ("import pickle, sys; prepare, item = pickle.loads(sys.stdin.buffer.read()); "
            "pieces = list(prepare(item)); "
            "print(len(pieces) > 1, sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps((prepare, item)), capture_output=True,
                         check=True).stdout.decode()
    assert out.strip() == "True []"


def test_the_package_exports_lazily():
    code = ("import sys, bat_w2v_kmeans; light = 'torch' not in sys.modules; "
            "[getattr(bat_w2v_kmeans, name) for name in bat_w2v_kmeans.__all__]; print(light)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
