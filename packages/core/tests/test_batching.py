import numpy as np
import pytest

from bat_core.batching import LengthBatcher, bucket_length
from bat_core.runner import Piece


def test_bucket_length():
    assert bucket_length(1, 64) == 64 and bucket_length(64, 64) == 64 and bucket_length(65, 64) == 128
    assert bucket_length(10, 64, minimum=400) == 400 and bucket_length(5000, 64, maximum=1024) == 1024


def pieces(lengths):
    return [Piece(np.zeros(length), length=length, file=i) for i, length in enumerate(lengths)]


def test_groups_hold_equal_lengths_and_go_out_when_full():
    batcher = LengthBatcher(max_items=2, max_length=None)
    out = [batch for piece in pieces([3, 5, 3, 5, 3]) for batch in batcher.add(piece)]
    assert [[p.file for p in batch] for batch in out] == [[0, 2], [1, 3]]
    assert [[p.file for p in batch] for batch in batcher.flush()] == [[4]]
    with pytest.raises(ValueError):
        LengthBatcher(0, None)


def test_summed_length_bounds_a_batch_and_pending_pieces_are_bounded():
    batcher = LengthBatcher(max_items=8, max_length=10)
    out = [batch for piece in pieces([4, 4, 4, 4]) for batch in batcher.add(piece)]
    assert [len(batch) for batch in out] == [2, 2]  # a third piece of 4 would pass 10
    bounded = LengthBatcher(max_items=2, max_length=None)
    out = [batch for piece in pieces([1, 2, 3, 4, 5, 6]) for batch in bounded.add(piece)]
    assert out and bounded.pending <= 4  # never more than two batches' worth waits


def test_a_failed_file_is_dropped_and_out_of_memory_halves():
    batcher = LengthBatcher(max_items=4, max_length=100)
    for piece in pieces([3, 3, 3]):
        batcher.add(piece)
    batcher.drop(1)
    assert [[p.file for p in batch] for batch in batcher.flush()] == [[0, 2]]
    batcher.shrink()
    assert (batcher.max_items, batcher.max_length) == (2, 50)


def test_pending_length_is_bounded_too_and_the_largest_group_by_length_goes_out():
    # pieces of many lengths and a large piece cap (as on a GPU): their summed length bounds what waits, and the
    # group holding the most audio goes out (three 250s, not the five 90s)
    batcher = LengthBatcher(max_items=1000, max_length=1000)
    lengths = [10, 10, 10, 200, 200, 250, 250, 250, 150, 150, 150, 90, 90, 90, 90, 90]
    out = []
    for piece in pieces(lengths):
        out.extend(batcher.add(piece))
        assert batcher.pending_length <= 2000
    assert [[p.length for p in batch] for batch in out] == [[250, 250, 250]]
    batcher.drop(0)
    flushed = batcher.flush()
    assert batcher.pending == batcher.pending_length == 0
    assert sorted(p.file for batch in out + flushed for p in batch) == list(range(1, len(lengths)))
