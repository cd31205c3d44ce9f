"""BlockReader over a pure fetch that counts its calls: hits, misses, read-ahead, memory bound."""

from __future__ import annotations

import random

import pytest

from xnatfs.cache.blocks import BlockReader
from xnatfs.errors import ServerError
from xnatfs.settings import ReadSettings

pytestmark = pytest.mark.unit

KiB = 1024
SETTINGS = ReadSettings(block_size=64 * KiB, first_block_size=16 * KiB, max_readahead=256 * KiB,
                        max_blocks_per_handle=8, total_budget=1024 * KiB)


class CountingFetch:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        assert 0 <= start < end <= len(self.data), (start, end)
        self.calls.append((start, end))
        return self.data[start:end]


def make(size: int = 2 * 1024 * KiB, settings: ReadSettings = SETTINGS) -> tuple[BlockReader, CountingFetch, bytes]:
    data = random.Random(size).randbytes(size)
    fetch = CountingFetch(data)
    return BlockReader(fetch, size, settings), fetch, data


def test_first_read_fetches_only_a_small_block() -> None:
    reader, fetch, data = make()
    assert reader.read(0, 100) == data[:100]
    assert fetch.calls == [(0, 16 * KiB)]


def test_repeated_reads_are_hits() -> None:
    reader, fetch, data = make()
    reader.read(0, 100)
    for _ in range(5):
        assert reader.read(10, 1000) == data[10:1010]
    assert len(fetch.calls) == 1


def test_sequential_reads_grow_the_window_up_to_the_cap() -> None:
    reader, fetch, data = make()
    chunk = 16 * KiB
    out = bytearray()
    for offset in range(0, len(data), chunk):
        out += reader.read(offset, chunk)
    assert bytes(out) == data
    sizes = [end - start for start, end in fetch.calls]
    assert sizes[:5] == [16 * KiB, 16 * KiB, 32 * KiB, 64 * KiB, 128 * KiB]
    assert max(sizes) == 256 * KiB
    assert len(fetch.calls) < len(data) // chunk // 4


def test_random_access_resets_the_window() -> None:
    reader, fetch, data = make()
    for offset in range(0, 256 * KiB, 16 * KiB):
        reader.read(offset, 16 * KiB)
    assert reader.window > 16 * KiB
    far = 1536 * KiB + 5
    assert reader.read(far, 10) == data[far:far + 10]
    assert fetch.calls[-1] == (1536 * KiB, 1552 * KiB)
    assert reader.window == 16 * KiB


def test_memory_stays_within_the_per_handle_bound() -> None:
    reader, fetch, data = make(size=8 * 1024 * KiB)
    rng = random.Random(1)
    for _ in range(300):
        offset = rng.randrange(0, len(data) - 1)
        length = rng.randrange(1, 100 * KiB)
        assert reader.read(offset, length) == data[offset:offset + length]
        assert reader.cached_bytes <= reader.capacity
    for offset in range(0, len(data), 128 * KiB):
        assert reader.read(offset, 128 * KiB) == data[offset:offset + 128 * KiB]
        assert reader.cached_bytes <= reader.capacity


def test_a_read_larger_than_the_cache_is_answered_in_bounded_fetches() -> None:
    reader, fetch, data = make(size=3 * 1024 * KiB)
    assert reader.read(7, len(data)) == data[7:]
    assert all(end - start <= 256 * KiB for start, end in fetch.calls)
    assert reader.cached_bytes <= reader.capacity


def test_reads_clip_at_end_of_file_and_never_fetch_past_it() -> None:
    reader, fetch, data = make(size=40 * KiB + 3)
    assert reader.read(40 * KiB, 100) == data[40 * KiB:]
    assert reader.read(len(data), 10) == b""
    assert reader.read(len(data) + 5, 10) == b""
    assert all(end <= len(data) for _, end in fetch.calls)


def test_cached_chunks_are_not_fetched_twice_around_a_gap() -> None:
    reader, fetch, data = make()
    reader.read(0, 10)                 # [0, 16K)
    reader.read(48 * KiB, 10)          # [48K, 64K)
    assert reader.read(0, 64 * KiB) == data[:64 * KiB]
    assert fetch.calls[-1] == (16 * KiB, 48 * KiB)


def test_empty_file_needs_no_fetch() -> None:
    fetch = CountingFetch(b"")
    reader = BlockReader(fetch, 0, SETTINGS)
    assert reader.read(0, 10) == b""
    assert fetch.calls == []


def test_short_fetch_is_an_error_not_silent_truncation() -> None:
    reader = BlockReader(lambda start, end: b"", 1000, SETTINGS)
    with pytest.raises(ServerError):
        reader.read(0, 10)


def test_trim_and_clear_release_memory() -> None:
    reader, fetch, data = make()
    for offset in range(0, 512 * KiB, 16 * KiB):
        reader.read(offset, 16 * KiB)
    assert reader.cached_bytes > 64 * KiB
    freed = reader.trim(64 * KiB)
    assert freed > 0 and reader.cached_bytes <= 64 * KiB
    reader.clear()
    assert reader.cached_bytes == 0
    assert reader.read(100, 10) == data[100:110]
