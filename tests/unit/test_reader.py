"""The one reader over a fake session (FileReaders → RangeFetch → BlockReader): the requests a read pattern
costs, one stream per sequential run, the Range-ignored fallback, stalls, broken streams, concurrency."""

from __future__ import annotations

import random
import threading
import time

import pytest

from xnatfs.errors import RequestTimeout, TransportError
from xnatfs.model.reading import FileReaders
from xnatfs.settings import ReadSettings

pytestmark = pytest.mark.unit

KiB, MiB = 1024, 1024 * 1024
SETTINGS = ReadSettings(block_size=64 * KiB, first_block_size=16 * KiB, max_readahead=512 * KiB,
                        keep_behind=128 * KiB, total_budget=4 * MiB, max_streams=4, wait_timeout=2.0)


class FakeStream:
    def __init__(self, server: FakeSession, start: int, end: int | None, ranged: bool) -> None:
        size = len(server.data)
        self.server = server
        self.status = 206 if ranged else 200
        self.pos = start if ranged else 0
        self.end = (size if end is None else end) if ranged else size
        self.headers = {"Content-Length": str(self.end - self.pos)}
        if ranged:
            self.headers["Content-Range"] = f"bytes {start}-{self.end - 1}/{size}"
        self.url = "http://xnat/f"
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self.server.stall.is_set():
            time.sleep(3)
        if self.server.fail_after is not None and self.pos >= self.server.fail_after:
            raise TransportError("connection reset")
        size = self.end - self.pos if size < 0 else min(size, self.end - self.pos)
        data = self.server.data[self.pos:self.pos + size]
        self.pos += len(data)
        self.server.sent += len(data)
        return data

    def close(self) -> None:
        self.closed = True


class FakeSession:
    """Serves ``data`` like XNAT; records each request's Range as (start, end or None); can ignore Range,
    stall or fail."""

    def __init__(self, size: int, *, ranges: bool = True) -> None:
        self.data = random.Random(size).randbytes(size)
        self.ranges = ranges
        self.requests: list[tuple[int, int | None] | None] = []
        self.streams: list[FakeStream] = []
        self.sent = 0
        self.stall = threading.Event()
        self.fail_after: int | None = None
        self._lock = threading.Lock()

    def open_stream(self, method: str, path: str, *, headers: dict[str, str], ok: tuple[int, ...]) -> FakeStream:
        header = headers.get("Range")
        with self._lock:
            if header is None:
                self.requests.append(None)
                stream = FakeStream(self, 0, None, ranged=False)
            else:
                first, _, last = header.removeprefix("bytes=").partition("-")
                start, end = int(first), (int(last) + 1 if last else None)
                self.requests.append((start, end))
                stream = FakeStream(self, start, end, ranged=self.ranges)
            self.streams.append(stream)
            return stream


def make(size: int, *, ranges: bool = True, readers: FileReaders | None = None,
         settings: ReadSettings = SETTINGS):  # type: ignore[no-untyped-def]
    session = FakeSession(size, ranges=ranges)
    readers = readers or FileReaders(session, settings)  # type: ignore[arg-type]
    readers.session = session  # type: ignore[assignment]
    return readers.open("/data/f", size, name="f"), session, readers


def read_all(handle, size: int, step: int = 32 * KiB) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(handle.read(offset, step) for offset in range(0, size, step))


def test_a_first_small_read_costs_one_small_ranged_request() -> None:
    handle, server, _ = make(4 * MiB)
    assert handle.read(0, 4096) == server.data[:4096]
    assert handle.read(4096, 4096) == server.data[4096:8192]
    assert server.requests == [(0, 16 * KiB)]
    handle.close()


def test_a_sequential_read_is_one_stream_after_the_first_block() -> None:
    handle, server, _ = make(3 * MiB)
    assert read_all(handle, 3 * MiB) == server.data
    assert server.requests == [(0, 32 * KiB), (32 * KiB, None)]  # the first read asked for 32 KiB
    handle.close()
    assert all(stream.closed for stream in server.streams)


def test_random_reads_are_small_bounded_requests_and_correct() -> None:
    handle, server, _ = make(8 * MiB)
    rng = random.Random(1)
    for _ in range(50):
        offset = rng.randrange(8 * MiB)
        assert handle.read(offset, 1000) == server.data[offset:offset + 1000]
    assert len(server.requests) <= 50
    assert sum(1 for start, end in server.requests if end is None or end - start > 16 * KiB) <= 2
    assert server.sent <= 50 * 16 * KiB + 2 * 64 * KiB
    handle.close()


def test_memory_stays_bounded_however_big_the_file() -> None:
    handle, server, readers = make(16 * MiB)
    peak = 0
    for offset in range(0, 16 * MiB, 128 * KiB):
        assert handle.read(offset, 128 * KiB) == server.data[offset:offset + 128 * KiB]
        peak = max(peak, handle.cached_bytes)
    limit = SETTINGS.max_readahead + SETTINGS.keep_behind + 2 * SETTINGS.block_size
    assert peak <= limit and readers.budget.peak <= limit
    handle.close()
    assert readers.budget.used == 0


def test_all_open_files_share_one_budget() -> None:
    session = FakeSession(8 * MiB)
    settings = ReadSettings(block_size=64 * KiB, first_block_size=16 * KiB, max_readahead=512 * KiB,
                            total_budget=1 * MiB)
    readers = FileReaders(session, settings)  # type: ignore[arg-type]
    handles = [readers.open("/data/f", 8 * MiB, name=f"f{i}") for i in range(4)]
    for handle in handles:
        assert read_all(handle, 512 * KiB) == session.data[:512 * KiB]
    time.sleep(0.3)
    for handle in handles:
        assert handle.read(512 * KiB, 128 * KiB) == session.data[512 * KiB:640 * KiB]
        time.sleep(0.25)
    assert readers.budget.used <= 1 * MiB + 4 * 2 * 64 * KiB
    for handle in handles:
        handle.close()
    assert readers.budget.used == 0


def test_a_server_that_ignores_range_is_read_as_a_forward_stream() -> None:
    handle, server, readers = make(2 * MiB, ranges=False)
    assert read_all(handle, 2 * MiB) == server.data
    assert readers.range_supported is False
    assert len(server.requests) <= 2  # the first answer (the whole file) serves the whole run
    for offset in (1_500_000, 100, 1_900_000):  # random access still answers, by reading from the start again
        assert handle.read(offset, 5000) == server.data[offset:offset + 5000]
    handle.close()
    other, later, _ = make(100_000, ranges=False, readers=readers)
    assert other.read(0, 10) == later.data[:10]
    assert later.requests == [None]  # once known, no Range is sent


def test_a_stalled_server_fails_the_read_within_the_wait_timeout() -> None:
    handle, server, _ = make(4 * MiB)
    handle.read(0, 16 * KiB)
    server.stall.set()
    start = time.monotonic()
    with pytest.raises(RequestTimeout):
        handle.read(16 * KiB, 256 * KiB)
    assert time.monotonic() - start < SETTINGS.wait_timeout + 1
    handle.close()


def test_a_broken_stream_is_an_error_for_the_reader_then_reads_resume() -> None:
    handle, server, _ = make(4 * MiB)
    server.fail_after = 1 * MiB
    with pytest.raises(TransportError):
        read_all(handle, 4 * MiB)
    server.fail_after = None
    assert handle.read(2 * MiB, 1000) == server.data[2 * MiB:2 * MiB + 1000]
    assert read_all(handle, 4 * MiB) == server.data
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
    threads.append(threading.Thread(target=lambda: read_all(handle, 8 * MiB, 128 * KiB)))
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
