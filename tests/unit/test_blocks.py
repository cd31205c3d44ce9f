"""BlockReader over a pure fetch that counts its calls: the read policy, read-ahead in the background,
memory bounds per file and in total, failure memory, the sink, and concurrent readers."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time

import pytest

from xnatfs.cache.blocks import BlockReader
from xnatfs.cache.budget import ReadBudget
from xnatfs.errors import RequestTimeout, ServerError, TransportError
from xnatfs.settings import ReadSettings

pytestmark = pytest.mark.unit

KiB, MiB = 1024, 1024 * 1024
SETTINGS = ReadSettings(block_size=64 * KiB, first_block_size=16 * KiB, max_readahead=256 * KiB,
                        keep_behind=64 * KiB, max_blocks_per_handle=8, total_budget=1024 * KiB, max_streams=4,
                        wait_timeout=2.0)


class CountingFetch:
    """Serves ``data``; records each call; can stall, fail, or run slowly."""

    def __init__(self, data: bytes, delay: float = 0.0) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []
        self.delay = delay
        self.fail: Exception | None = None
        self.stall = threading.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False
        self._lock = threading.Lock()

    def __call__(self, start: int, end: int) -> bytes:
        assert 0 <= start < end <= len(self.data), (start, end)
        with self._lock:
            self.calls.append((start, end))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.stall.is_set():
                time.sleep(3)
            if self.delay:
                time.sleep(self.delay)
            if self.fail is not None:
                raise self.fail
            return self.data[start:end]
        finally:
            with self._lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.closed = True


def make(size: int = 2 * MiB, settings: ReadSettings = SETTINGS, budget: ReadBudget | None = None,
         **kw: object) -> tuple[BlockReader, CountingFetch, bytes]:
    data = random.Random(size).randbytes(size)
    fetch = CountingFetch(data, **kw)  # type: ignore[arg-type]
    return BlockReader(fetch, size, settings, budget, name="f"), fetch, data


def settle(reader: BlockReader, timeout: float = 3.0) -> None:
    """Wait until the background pump has nothing in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = reader.fetches
        time.sleep(0.05)
        if reader.fetches == before and not any(e.data is None for e in reader._extents.values()):
            return


def read_all(reader: BlockReader, size: int, step: int) -> bytes:
    return b"".join(reader.read(offset, step) for offset in range(0, size, step))


def test_a_first_small_read_costs_one_small_fetch() -> None:
    reader, fetch, data = make()
    assert reader.read(0, 4096) == data[:4096]
    assert reader.read(4096, 4096) == data[4096:8192]  # a sniff of 16 KiB in pieces: no read-ahead yet
    settle(reader)
    assert fetch.calls == [(0, 16 * KiB)]


def test_repeated_reads_are_hits() -> None:
    reader, fetch, data = make()
    reader.read(100, 100)
    for _ in range(5):
        assert reader.read(110, 1000) == data[110:1110]
    assert len(fetch.calls) == 1


def test_a_sequential_read_prefetches_blocks_in_order_in_the_background() -> None:
    reader, fetch, data = make()
    assert read_all(reader, len(data), 16 * KiB) == data
    assert fetch.calls[0] == (0, 16 * KiB)
    # then blocks of block_size, in order, each starting where the last ended (one stream on the HTTP side)
    assert all(b[0] == a[1] for a, b in zip(fetch.calls, fetch.calls[1:]))
    assert {end - start for start, end in fetch.calls[1:-1]} == {64 * KiB}
    assert reader.waits < len(fetch.calls)  # mostly served from blocks fetched ahead
    reader.close()


def test_read_ahead_grows_with_the_run_and_stays_within_max_readahead() -> None:
    reader, fetch, data = make(size=4 * MiB)
    for offset in range(0, 64 * KiB, 16 * KiB):
        reader.read(offset, 16 * KiB)
    settle(reader)
    early = max(end for _, end in fetch.calls)
    assert early <= 64 * KiB + 2 * 64 * KiB + 64 * KiB  # about twice what was consumed
    for offset in range(64 * KiB, 2 * MiB, 16 * KiB):
        reader.read(offset, 16 * KiB)
    settle(reader)
    ahead = max(end for _, end in fetch.calls) - 2 * MiB
    assert 64 * KiB < ahead <= SETTINGS.max_readahead + 64 * KiB
    reader.close()


def test_random_reads_cost_one_small_fetch_each_and_no_read_ahead() -> None:
    reader, fetch, data = make(size=8 * MiB)
    rng = random.Random(1)
    for _ in range(50):
        offset = rng.randrange(len(data))
        assert reader.read(offset, 1000) == data[offset:offset + 1000]
    settle(reader)
    assert len(fetch.calls) <= 50
    assert all(end - start <= 16 * KiB for start, end in fetch.calls)


def test_a_read_larger_than_max_readahead_is_fetched_in_bounded_pieces() -> None:
    reader, fetch, data = make(size=3 * MiB)
    assert reader.read(7, len(data)) == data[7:]
    assert all(end - start <= SETTINGS.max_readahead for start, end in fetch.calls)


def test_memory_stays_within_the_per_file_bound() -> None:
    reader, fetch, data = make(size=8 * MiB)
    capacity = SETTINGS.max_blocks_per_handle * SETTINGS.block_size
    rng = random.Random(2)
    for _ in range(300):
        offset = rng.randrange(0, len(data) - 1)
        length = rng.randrange(1, 100 * KiB)
        assert reader.read(offset, length) == data[offset:offset + length]
        assert reader.cached_bytes <= capacity + 100 * KiB
    for offset in range(0, len(data), 128 * KiB):
        assert reader.read(offset, 128 * KiB) == data[offset:offset + 128 * KiB]
        assert reader.cached_bytes <= capacity + 128 * KiB
    reader.close()
    assert reader.cached_bytes == 0 and reader.budget.used == 0


def test_a_sequential_reader_keeps_little_behind_it() -> None:
    reader, fetch, data = make(size=8 * MiB)
    peak = 0
    for offset in range(0, len(data), 32 * KiB):
        assert reader.read(offset, 32 * KiB) == data[offset:offset + 32 * KiB]
        peak = max(peak, reader.cached_bytes)
    assert peak <= SETTINGS.keep_behind + SETTINGS.max_readahead + 2 * SETTINGS.block_size
    reader.close()


def test_idle_readers_give_their_blocks_back_when_the_budget_is_spent() -> None:
    budget = ReadBudget(512 * KiB, max_streams=8)
    readers = [make(size=4 * MiB, budget=budget) for _ in range(4)]
    for reader, _, data in readers:
        assert read_all(reader, 512 * KiB, 32 * KiB) == data[:512 * KiB]
    time.sleep(0.3)  # the first readers are idle now
    for reader, _, data in readers:
        assert reader.read(512 * KiB, 32 * KiB) == data[512 * KiB:544 * KiB]
        settle(reader)
    assert budget.used <= 512 * KiB + 4 * 2 * SETTINGS.block_size
    assert budget.peak <= 512 * KiB + 4 * (SETTINGS.max_readahead + SETTINGS.keep_behind)
    for reader, *_ in readers:
        reader.close()
    assert budget.used == 0


def test_a_spent_budget_never_blocks_a_read() -> None:
    budget = ReadBudget(16 * KiB)  # smaller than one block
    reader, fetch, data = make(size=1 * MiB, budget=budget)
    assert read_all(reader, len(data), 64 * KiB) == data
    reader.close()


def test_too_many_prefetching_readers_stop_the_least_recently_used() -> None:
    budget = ReadBudget(64 * MiB, max_streams=2)
    readers = [make(size=4 * MiB, budget=budget, delay=0.01) for _ in range(3)]
    for reader, _, data in readers:
        assert read_all(reader, 256 * KiB, 32 * KiB) == data[:256 * KiB]
        time.sleep(0.25)
    readers[-1][0].read(256 * KiB, 32 * KiB)
    time.sleep(0.1)
    assert budget.streams <= 2
    for reader, *_ in readers:
        reader.close()


def test_a_stalled_fetch_fails_the_waiting_read_within_wait_timeout() -> None:
    settings = dataclasses.replace(SETTINGS, wait_timeout=0.5)
    reader, fetch, data = make(settings=settings)
    reader.read(0, 16 * KiB)
    reader.read(16 * KiB, 16 * KiB)  # sequential: the pump starts
    fetch.stall.set()
    settle(reader, 0.2)
    start = time.monotonic()
    with pytest.raises(RequestTimeout):
        reader.read(1 * MiB, 16 * KiB)  # sequential? no: a random read fetches itself (and stalls 3 s)
        reader.read(1 * MiB + 16 * KiB, 200 * KiB)
    assert time.monotonic() - start < 4
    reader.close()


def test_a_read_waiting_for_the_pump_times_out() -> None:
    settings = dataclasses.replace(SETTINGS, wait_timeout=0.5)
    reader, fetch, data = make(settings=settings)
    reader.read(0, 16 * KiB)
    fetch.stall.set()
    start = time.monotonic()
    with pytest.raises(RequestTimeout):
        reader.read(16 * KiB, 64 * KiB)  # sequential: waits for the pump, which stalls
    assert time.monotonic() - start < 1.5
    reader.close()


def test_a_failed_fetch_is_the_reads_error_then_reads_resume() -> None:
    reader, fetch, data = make()
    reader.read(0, 16 * KiB)
    fetch.fail = TransportError("connection reset")
    with pytest.raises(TransportError):
        read_all(reader, len(data), 32 * KiB)
    fetch.fail = None
    assert reader.read(1 * MiB, 1000) == data[1 * MiB:1 * MiB + 1000]
    assert read_all(reader, len(data), 32 * KiB) == data
    reader.close()


def test_a_failed_read_is_remembered_briefly_then_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    settings = dataclasses.replace(SETTINGS, failure_memory=0.3)
    reader, fetch, data = make(settings=settings)
    fetch.fail = TransportError("connection refused")
    with pytest.raises(TransportError):
        reader.read(0, 4096)
    fetch.fail = None
    with pytest.raises(TransportError) as again:  # the kernel's retry: the same error at once, no fetch
        reader.read(0, 4096)
    assert "connection refused" in str(again.value)
    assert getattr(again.value, "log_level", None) == logging.DEBUG  # said once
    assert len(fetch.calls) == 1
    time.sleep(0.35)
    assert reader.read(0, 4096) == data[:4096]
    assert len(fetch.calls) == 2
    reader.close()


def test_without_failure_memory_the_next_read_tries_again() -> None:
    reader, fetch, data = make()
    fetch.fail = TransportError("connection refused")
    with pytest.raises(TransportError):
        reader.read(0, 4096)
    fetch.fail = None
    assert reader.read(0, 4096) == data[:4096]


def test_a_short_fetch_is_an_error_not_silent_truncation() -> None:
    reader = BlockReader(lambda start, end: b"x" * (end - start - 1), 1000, SETTINGS)
    with pytest.raises(ServerError, match="sent"):
        reader.read(0, 10)


def test_reads_clip_at_end_of_file_and_never_fetch_past_it() -> None:
    reader, fetch, data = make(size=40 * KiB + 3)
    assert reader.read(40 * KiB, 100) == data[40 * KiB:]
    assert reader.read(len(data), 10) == b""
    assert reader.read(len(data) + 5, 10) == b""
    assert read_all(reader, len(data), 4 * KiB) == data
    assert all(end <= len(data) for _, end in fetch.calls)


def test_empty_file_needs_no_fetch() -> None:
    fetch = CountingFetch(b"")
    reader = BlockReader(fetch, 0, SETTINGS)
    assert reader.read(0, 10) == b""
    assert fetch.calls == []


def test_cached_blocks_are_not_fetched_twice_around_a_gap() -> None:
    reader, fetch, data = make()
    reader.read(0, 10)                 # [0, 16K)
    reader.read(48 * KiB, 10)          # [48K, 64K)
    assert reader.read(0, 64 * KiB) == data[:64 * KiB]
    assert fetch.calls[-1] == (16 * KiB, 48 * KiB)


class Sink:
    def __init__(self) -> None:
        self.parts: list[tuple[int, bytes]] = []
        self.finished = self.abandoned = False

    def write(self, offset: int, data: bytes) -> None:
        self.parts.append((offset, bytes(data)))

    def finish(self) -> None:
        self.finished = True

    def abandon(self) -> None:
        self.abandoned = True


def test_the_sink_gets_the_whole_file_in_order_and_is_finished() -> None:
    data = random.Random(5).randbytes(1 * MiB + 5)
    sink = Sink()
    reader = BlockReader(CountingFetch(data), len(data), SETTINGS, sink=sink)
    assert read_all(reader, len(data), 16 * KiB) == data
    reader.close()
    assert sink.finished and not sink.abandoned
    assert b"".join(part for _, part in sink.parts) == data
    assert [offset for offset, _ in sink.parts] == sorted(offset for offset, _ in sink.parts)


def test_an_unfinished_sink_is_abandoned_at_close() -> None:
    data = random.Random(5).randbytes(1 * MiB)
    sink = Sink()
    reader = BlockReader(CountingFetch(data), len(data), SETTINGS, sink=sink)
    reader.read(500 * KiB, 10)
    reader.close()
    assert sink.abandoned and not sink.finished


def test_close_frees_the_budget_closes_the_fetch_and_refuses_reads() -> None:
    reader, fetch, data = make()
    read_all(reader, 512 * KiB, 32 * KiB)
    reader.close()
    assert fetch.closed and reader.budget.used == 0
    with pytest.raises(ServerError):
        reader.read(0, 10)


def test_trim_releases_memory() -> None:
    reader, fetch, data = make()
    read_all(reader, 256 * KiB, 16 * KiB)
    settle(reader)
    freed = reader.trim(16 * KiB)
    assert freed > 0 and reader.cached_bytes <= 16 * KiB
    assert reader.read(100, 10) == data[100:110]


@pytest.mark.parametrize("delay", [0.0, 0.002])
def test_concurrent_readers_of_one_file_get_their_bytes(delay: float) -> None:
    reader, fetch, data = make(size=8 * MiB, delay=delay)
    errors: list[BaseException] = []

    def random_reader(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(60):
                offset = rng.randrange(len(data))
                size = rng.choice([4096, 128 * KiB])
                assert reader.read(offset, size) == data[offset:offset + size]
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    def sequential_reader(start: int) -> None:
        try:
            for offset in range(start, start + 2 * MiB, 128 * KiB):
                assert reader.read(offset, 128 * KiB) == data[offset:offset + 128 * KiB]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=random_reader, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=sequential_reader, args=(i * 3 * MiB,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    reader.close()
    assert reader.budget.used == 0


def test_kernel_like_out_of_order_reads_stay_one_run() -> None:
    """The kernel's parallel reads arrive slightly out of order: still one sequential run, no re-fetches."""
    reader, fetch, data = make(size=4 * MiB)
    offsets = list(range(0, len(data), 128 * KiB))
    for i in range(0, len(offsets) - 1, 2):
        offsets[i], offsets[i + 1] = offsets[i + 1], offsets[i]
    for offset in offsets:
        assert reader.read(offset, 128 * KiB) == data[offset:offset + 128 * KiB]
    fetched = sum(end - start for start, end in fetch.calls)
    assert fetched <= len(data) + 128 * KiB
    reader.close()


@pytest.mark.parametrize("seed", range(40))
def test_mixed_access_patterns_get_the_right_bytes_without_refetching_in_a_loop(seed: int) -> None:
    """Random jumps, short steps back, sequential stretches and reads larger than the cache: every byte
    right, and what is fetched stays near what was asked (no fetch-and-evict livelock)."""
    rng = random.Random(seed)
    size = rng.choice([100_000, 2 * MiB, 8 * MiB])
    reader, fetch, data = make(size=size)
    asked, pos = 0, 0
    for _ in range(60):
        kind = rng.random()
        if kind < 0.4:
            pos = rng.randrange(size)
        elif kind < 0.5:
            pos = max(0, pos - rng.randrange(200 * KiB))
        length = rng.choice([1, 1000, 4096, 16 * KiB, 128 * KiB, 1 * MiB])
        assert reader.read(pos, length) == data[pos:pos + length], (pos, length)
        asked += min(length, max(0, size - pos))
        pos += length
    settle(reader, 1.0)
    assert sum(end - start for start, end in fetch.calls) <= 3 * asked + 2 * MiB
    reader.close()
    assert reader.budget.used == 0
