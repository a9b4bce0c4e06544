import math

import numpy as np
import pytest

from bat_core.windows import Windower, windows_of


def test_windows_cover_everything():
    assert [(w.span.start, len(w.data)) for w in windows_of(np.arange(100), 200, 100)] == [(0, 100)]
    windows = windows_of(np.arange(1000), 300, 200)
    assert windows[0].span.start == 0 and len(windows[0].data) == 300
    assert windows[-1].span.start + len(windows[-1].data) == 1000 and math.isinf(windows[-1].span.owned_to)
    assert all(b.span.start - a.span.start == 200 for a, b in zip(windows, windows[1:]))
    assert windows_of(np.arange(300), 300, 200)[0].span.owned_to == math.inf  # exactly one window long: one window
    with pytest.raises(ValueError):
        Windower(5, 6)


@pytest.mark.parametrize("n, window, hop", [(1000, 300, 200), (1000, 320, 320), (4321, 1000, 640), (80, 1000, 500)])
@pytest.mark.parametrize("block", [1, 37, 10_000])
def test_streamed_windows_stitch_back_gap_and_seam_free(n, window, hop, block):
    """A frame 'encoder' that reports each frame's absolute position: the owned frames of the windows of a
    stream pushed in blocks of any size join into the unwindowed frames."""
    stride = 10
    samples = np.arange(n)
    windower = Windower(window, hop)
    windows = [w for start in range(0, n, block) for w in windower.push(samples[start:start + block])]
    windows += list(windower.finish())
    kept = []
    for w in windows:
        frames = w.data[::stride][: len(w.data) // stride]  # frame i starts at sample span.start + i*stride
        kept.append(frames[w.span.owned(len(frames), stride)])
    stitched = np.concatenate(kept)
    expected = samples[::stride][: n // stride]
    np.testing.assert_array_equal(stitched[: len(expected)], expected)
    assert abs(len(stitched) - len(expected)) <= 1
