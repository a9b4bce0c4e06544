import numpy as np
import pytest

from bat_core.windows import split_windows, stitch_frames, window_bounds


def test_bounds_cover_everything():
    assert window_bounds(100, 200, 100) == [(0, 100)]
    bounds = window_bounds(1000, 300, 200)
    assert bounds[0] == (0, 300) and bounds[-1][1] == 1000
    assert all(b[0] - a[0] == 200 for a, b in zip(bounds, bounds[1:]))
    with pytest.raises(ValueError):
        window_bounds(10, 5, 6)


@pytest.mark.parametrize("n, window, hop", [(1000, 300, 200), (1000, 320, 320), (4321, 1000, 640), (80, 1000, 500)])
def test_stitched_frames_equal_unwindowed_frames(n, window, hop):
    """A frame 'encoder' that reports each frame's absolute position stitches back gap- and seam-free."""
    stride = 10
    samples = np.arange(n)
    bounds = window_bounds(n, window, hop)
    windows = split_windows(samples, window, hop)
    per_window = [chunk[::stride][: len(chunk) // stride] for chunk in windows]  # frame i starts at sample i*stride
    stitched = stitch_frames(per_window, bounds, stride)
    expected = samples[::stride][: n // stride]
    np.testing.assert_array_equal(stitched[: len(expected)], expected)
    assert abs(len(stitched) - len(expected)) <= 1
