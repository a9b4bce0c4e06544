import numpy as np
import pytest

from bat_core.npy import StoredRows


def test_rows_of_c_and_fortran_arrays_read_by_block(tmp_path):
    frames = np.arange(70, dtype=np.float32).reshape(10, 7)
    np.save(tmp_path / "frames.npy", frames)
    np.save(tmp_path / "mel.npy", np.asfortranarray(frames.T))  # (n, T) as the store writes spectrograms
    for name in ("frames.npy", "mel.npy"):
        stored = StoredRows.open(tmp_path / name)
        assert (stored.rows, stored.row_shape) == (10, (7,))
        np.testing.assert_array_equal(stored.read(3, 4), frames[3:7])
        np.testing.assert_array_equal(np.concatenate([block for _, block in stored.blocks(4)]), frames)
        assert stored.read(8, 10).shape == (2, 7)


def test_cut_short_and_non_contiguous_arrays_are_refused(tmp_path):
    np.save(tmp_path / "cube.npy", np.asfortranarray(np.zeros((2, 3, 4), np.float32)))
    with pytest.raises(ValueError, match="Fortran"):
        StoredRows.open(tmp_path / "cube.npy")
    np.save(tmp_path / "short.npy", np.zeros((100, 4), np.float32))
    data = (tmp_path / "short.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[:-100])
    with pytest.raises(ValueError, match="cut short"):
        StoredRows.open(tmp_path / "short.npy")
