"""The open-file reader over a fake ranged opener: request pattern, memory bounds, Range ignored, errors."""

from __future__ import annotations

import random
import threading
import time

import pytest

from xnatfs.errors import RequestTimeout, TransportError
from xnatfs.vfs.reader import RangeSupport, ReadBudget, ReaderSettings, RemoteFile

pytestmark = pytest.mark.unit

KiB, MiB = 1024, 1024 * 1024
SETTINGS = ReaderSettings(first_block=16 * KiB, chunk=64 * KiB, max_ahead=512 * KiB, keep_behind=128 * KiB,
                          total_budget=4 * MiB, max_streams=4, wait_timeout=2.0)


class FakeStream:
    def __init__(self, server: FakeServer, start: int, end: int | None) -> None:
        self.server = server
        ranged = server.ranges and (start > 0 or end is not None)
        self.status = 206 if ranged else 200
        self.pos = start if ranged else 0
        self.end = (end if end is not None else len(server.data)) if ranged else len(server.data)
        self.headers = {"Content-Range": f"bytes {start}-{self.end - 1}/{len(server.data)}"} if ranged else {}
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self.server.stall.is_set():
            time.sleep(5)
        if self.server.fail_after is not None and self.pos >= self.server.fail_after:
            raise TransportError("connection reset")
        size = self.end - self.pos if size < 0 else min(size, self.end - self.pos)
        data = self.server.data[self.pos:self.pos + size]
        self.pos += len(data)
        self.server.sent += len(data)
        return data

    def close(self) -> None:
        self.closed = True


class FakeServer:
    """Serves ``data``; records each request as (start, end); can ignore Range, stall or fail."""

    def __init__(self, size: int, *, ranges: bool = True) -> None:
        self.data = random.Random(size).randbytes(size)
        self.ranges = ranges
        self.requests: list[tuple[int, int | None]] = []
        self.sent = 0
        self.stall = threading.Event()
        self.fail_after: int | None = None

    def open(self, start: int, end: int | None) -> FakeStream:
        self.requests.append((start, end))
        return FakeStream(self, start, end)


def make(size: int, *, ranges: bool = True, budget: ReadBudget | None = None,
         support: RangeSupport | None = None) -> tuple[RemoteFile, FakeServer, ReadBudget]:
    server = FakeServer(size, ranges=ranges)
    budget = budget or ReadBudget(SETTINGS.total_budget, SETTINGS.max_streams)
    handle = RemoteFile(server.open, size, SETTINGS, budget, support or RangeSupport(), name="f")
    return handle, server, budget


def read_all(handle: RemoteFile, size: int, step: int = 32 * KiB) -> bytes:
    return b"".join(handle.read(offset, step) for offset in range(0, size, step))


def test_a_first_small_read_costs_one_small_ranged_request() -> None:
    handle, server, _ = make(4 * MiB)
    assert handle.read(0, 4096) == server.data[:4096]
    assert handle.read(4096, 4096) == server.data[4096:8192]
    assert server.requests == [(0, 16 * KiB)]
    handle.close()


def test_a_sequential_read_streams_in_one_request_after_the_first_block() -> None:
    handle, server, _ = make(3 * MiB)
    assert read_all(handle, 3 * MiB) == server.data
    assert server.requests == [(0, 32 * KiB), (32 * KiB, None)]  # the first read asked for 32 KiB
    handle.close()


def test_random_reads_are_small_ranged_requests_and_correct() -> None:
    handle, server, _ = make(8 * MiB)
    rng = random.Random(1)
    for _ in range(50):
        offset = rng.randrange(8 * MiB)
        assert handle.read(offset, 1000) == server.data[offset:offset + 1000]
    assert all(end is not None and end - start <= 16 * KiB for start, end in server.requests)
    assert server.sent <= 51 * 16 * KiB
    handle.close()


def test_memory_stays_within_the_window_however_big_the_file() -> None:
    handle, server, budget = make(16 * MiB)
    peak = 0
    for offset in range(0, 16 * MiB, 128 * KiB):
        assert handle.read(offset, 128 * KiB) == server.data[offset:offset + 128 * KiB]
        peak = max(peak, handle.buffered)
    limit = SETTINGS.max_ahead + SETTINGS.keep_behind + 2 * SETTINGS.chunk
    assert peak <= limit and budget.peak <= limit
    handle.close()
    assert budget.used == 0


def test_read_ahead_grows_with_the_sequential_run_and_stays_bounded() -> None:
    handle, server, _ = make(16 * MiB)
    handle.read(0, 4096)
    handle.read(16 * KiB, 64 * KiB)  # sequential: the stream starts, two chunks ahead
    time.sleep(0.2)
    early = server.sent
    assert early <= 16 * KiB + 64 * KiB + 2 * SETTINGS.chunk + SETTINGS.chunk
    for offset in range(80 * KiB, 4 * MiB, 64 * KiB):
        handle.read(offset, 64 * KiB)
    time.sleep(0.2)
    ahead = server.sent - 4 * MiB
    assert 2 * SETTINGS.chunk < ahead <= SETTINGS.max_ahead + SETTINGS.chunk
    handle.close()


def test_idle_files_give_their_read_ahead_back_when_the_budget_is_spent() -> None:
    budget = ReadBudget(1 * MiB, max_streams=8)
    files = [make(8 * MiB, budget=budget) for _ in range(4)]
    for handle, server, _ in files:
        assert handle.read(0, 4096) == server.data[:4096]
        assert handle.read(4096, 128 * KiB) == server.data[4096:4096 + 128 * KiB]
    time.sleep(0.4)  # the first files are now idle
    for handle, server, _ in files:
        assert handle.read(4096 + 128 * KiB, 128 * KiB) == server.data[4096 + 128 * KiB:4096 + 256 * KiB]
        time.sleep(0.25)
    assert budget.used <= 1 * MiB + 4 * (SETTINGS.chunk + 256 * KiB)
    for handle, *_ in files:
        handle.close()
    assert budget.used == 0


def test_a_server_that_ignores_range_is_read_forward() -> None:
    support = RangeSupport()
    handle, server, _ = make(2 * MiB, ranges=False, support=support)
    assert read_all(handle, 2 * MiB) == server.data
    assert support.supported is False
    for offset in (1_500_000, 100, 1_900_000):  # random access still answers, by re-reading from the start
        assert handle.read(offset, 5000) == server.data[offset:offset + 5000]
    handle.close()


def test_a_stalled_server_fails_the_read_within_the_wait_timeout() -> None:
    handle, server, _ = make(4 * MiB)
    handle.read(0, 4096)
    server.stall.set()
    start = time.monotonic()
    with pytest.raises(RequestTimeout):
        handle.read(4096, 256 * KiB)
    assert time.monotonic() - start < SETTINGS.wait_timeout + 1
    handle.close()


def test_a_broken_stream_is_an_error_for_the_reader_then_reads_resume() -> None:
    handle, server, _ = make(4 * MiB)
    server.fail_after = 1 * MiB
    with pytest.raises(TransportError):
        read_all(handle, 4 * MiB)
    server.fail_after = None
    assert handle.read(2 * MiB, 1000) == server.data[2 * MiB:2 * MiB + 1000]
    handle.close()


def test_concurrent_readers_of_one_handle_get_their_bytes() -> None:
    handle, server, _ = make(8 * MiB)
    errors: list[BaseException] = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                offset = rng.randrange(8 * MiB)
                size = rng.choice([4096, 128 * KiB])
                assert handle.read(offset, size) == server.data[offset:offset + size]
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    handle.close()


def test_reads_past_the_end_are_empty_and_closed_handles_refuse() -> None:
    handle, server, _ = make(100_000)
    assert handle.read(99_990, 100) == server.data[99_990:]
    assert handle.read(100_000, 10) == b""
    handle.close()
    with pytest.raises(Exception):
        handle.read(0, 10)
