import pytest

from bat_core.batching import bucket_length, chunks, length_batches


def test_bucket_length():
    assert bucket_length(1, 64) == 64 and bucket_length(64, 64) == 64 and bucket_length(65, 64) == 128
    assert bucket_length(3, 64, maximum=32) == 32 and bucket_length(0, 10, minimum=16) == 16


def test_length_batches_group_equal_lengths_only():
    lengths = [128, 64, 128, 64, 192, 128, 128]
    batches = length_batches(lengths, batch_size=3)
    assert batches == [[1, 3], [0, 2, 5], [6], [4]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    with pytest.raises(ValueError):
        length_batches(lengths, 0)
    assert length_batches(lengths, batch_size=8, max_total=256) == [[1, 3], [0, 2], [5, 6], [4]]


def test_chunks():
    assert list(chunks(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunks([], 3)) == []


def test_chunks_bounded_by_total_size():
    sizes = [1, 1, 5, 1, 1, 1, 1]
    got = list(chunks(sizes, 3, max_total=3, size_of=float))
    assert got == [[1, 1], [5], [1, 1, 1], [1]]  # an item over the bound goes alone; the count bound still holds
    assert sum(got, []) == sizes
    with pytest.raises(ValueError):
        list(chunks(sizes, 3, max_total=3))
