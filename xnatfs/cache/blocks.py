"""BlockReader: the one ranged reader, for ``File.open()`` and the mount alike.

A block cache over a pure ``fetch(start, end) -> bytes`` (bytes ``[start, end)``), with background
read-ahead, in the manner of fsspec's ``BlockCache``/``BackgroundBlockCache`` (style-anchors §5). The
only I/O is that callable, so the policy is tested with a counting fake; the HTTP side, which checks
the server's answers and keeps a stream open across consecutive fetches, is
:class:`xnatfs.model.reading.FileReaders`.

Policy (settings: :class:`~xnatfs.settings.ReadSettings`):

- The **first** read of a file, and any read that jumps elsewhere, costs one fetch of
  ``[offset, max(end, offset + first_block_size))``: file managers sniff 16 KiB of many files and
  thumbnailers read headers, and neither must pull megabytes. (A read larger than ``max_readahead``
  is fetched in pieces of that size.)
- Once reads are **sequential** (each starting near where the last ended or inside the read-ahead:
  up to a first block and two of the largest reads seen after the further of the two, or a block and
  a first block before it, as the kernel's parallel reads arrive out of order) and the run has
  consumed a first block, a background
  thread (the *pump*, one per reader) fetches ``block_size`` blocks in order ahead of the reader, up
  to twice what the run has consumed, at most ``max_readahead``. It pauses when far enough ahead and
  resumes when half of that is consumed, so the reader and the pump do not wake each other for every
  read. Fetches in order let the fetch side ride one HTTP stream for the whole run: a distant server
  costs its latency once per run, not per block (see :mod:`xnatfs.model.reading` for why one stream,
  not several ranged fetches in flight).
- A read waits for a block being fetched rather than fetching it twice; every wait is bounded by
  ``wait_timeout`` (:class:`~xnatfs.errors.RequestTimeout`).
- Memory: a sequential reader drops blocks more than ``keep_behind`` behind it at once; any reader
  evicts its oldest blocks beyond ``max_blocks_per_handle × block_size``; all readers sharing a
  :class:`~xnatfs.cache.budget.ReadBudget` stay near ``total_budget``, idle readers shedding first.
  The pump holds back while the budget is spent; a read's own bytes are always fetched.
- A failed fetch is remembered for ``failure_memory`` seconds: reads that need the server fail at
  once with the same error (logged at debug level: the first was logged), so the kernel's retries of
  the same pages do not wait for a hung server again.
- An optional **sink** (the mount's disk cache) receives the file's bytes in order from offset 0 as
  blocks arrive, and is finished when the last byte arrived or abandoned at close.

Reads return ``bytes`` (what a FUSE binding copies out): a read matching a whole block returns the
block itself, any other read costs one copy.

Thread-safe: one lock per reader (readers and the pump wait on two conditions of it); fetches run
without it. The budget is called after the lock is released. Imports the standard library,
:mod:`xnatfs.settings`, :mod:`xnatfs.errors` and :mod:`xnatfs.cache.budget` only.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from xnatfs.cache.budget import ReadBudget
from xnatfs.errors import RequestTimeout, ServerError, TransportError, XNATError
from xnatfs.settings import ReadSettings

log = logging.getLogger(__name__)

#: ``fetch(start, end)`` → exactly the bytes ``[start, end)`` of the file (fewer only if the server
#: sent fewer; the reader then fails the read). It may have a ``close()``, called when the reader closes.
Fetch = Callable[[int, int], bytes]

#: how long an idle pump waits for the reader to need more before its thread ends (seconds)
PUMP_IDLE = 2.0
#: a reader used within this many seconds is not idle: the budget does not make it shed
BUSY = 0.2


class CacheSink(Protocol):
    """Receives a file's bytes in order from offset 0 (the mount's on-disk cache)."""

    def write(self, offset: int, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def abandon(self) -> None: ...


def repeated(error: XNATError) -> XNATError:
    """``error`` raised again for a remembered failure: logged at debug level (the first was logged)."""
    error.log_level = logging.DEBUG  # type: ignore[attr-defined]
    return error


class _Extent:
    """Bytes ``[start, end)``: being fetched (``data`` None) or cached."""

    __slots__ = ("start", "end", "data", "error")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.data: bytes | None = None
        self.error: XNATError | None = None


class BlockReader:
    """Reads ``[offset, offset + length)`` of a file of ``size`` bytes through ``fetch`` (module docstring)."""

    def __init__(self, fetch: Fetch, size: int, settings: ReadSettings | None = None,
                 budget: ReadBudget | None = None, *, name: str = "", sink: CacheSink | None = None) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        s = settings or ReadSettings()
        self._fetch = fetch
        self.size = size
        self.name = name
        self.settings = s
        self._first = max(1, s.first_block_size)
        self._block = max(1, s.block_size)
        self._keep_behind = max(0, s.keep_behind)
        self._capacity = max(self._block + self._first, s.max_blocks_per_handle * s.block_size)
        self._max_ahead = max(self._block, min(s.max_readahead, self._capacity - self._keep_behind - self._block))
        self._slack = self._block + self._first  # how far behind the last read a read still continues the run
        self._ahead_slack = self._first  # how far after it: a first block, plus two of the largest reads seen
        self._budget = budget if budget is not None else ReadBudget(s.total_budget, s.max_streams)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # readers wait here for blocks
        self._space = threading.Condition(self._lock)  # the pump waits here for the reader to move on
        self._starts: list[int] = []
        self._extents: dict[int, _Extent] = {}  # oldest first (eviction order)
        self._bytes = 0
        self._last_end: int | None = None
        self._run_start = 0
        self._sequential = False
        self._cursor = 0  # where the pump fetches next
        self._demand = 0  # the end a waiting read needs from the pump
        self._pumping = False
        self._paused = False
        self._resume_at = 0
        self._generation = 0
        self._victims: list[BlockReader] = []
        self._failure: tuple[float, XNATError] | None = None
        self._pump_error: XNATError | None = None
        #: fetches the pump may make before a read makes progress (never a livelock of fetch and evict)
        self._credit_max = s.max_blocks_per_handle + 2
        self._credit = self._credit_max
        self._closed = False
        self._sink = sink
        self._sink_pos = 0
        self.last_used = time.monotonic()
        self.fetches = 0
        self.fetched_bytes = 0
        self.waits = 0
        self._budget.register(self)

    def __repr__(self) -> str:
        return (f"BlockReader({self.name!r}, size={self.size}, cached={self._bytes}, fetches={self.fetches}, "
                f"pumping={self._pumping})")

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    @property
    def budget(self) -> ReadBudget:
        return self._budget

    # -- reading ------------------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` clipped to the file; fewer only at end of file."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        end = offset + length
        if end > self.size:
            end = self.size
        if offset >= end:
            return b""
        out = None
        with self._lock:  # the common case, kept short: it runs once per kernel read
            i = bisect.bisect_right(self._starts, offset) - 1
            if i >= 0 and not self._closed:
                extent = self._extents[self._starts[i]]
                data = extent.data
                if data is not None and end <= extent.end:
                    start = extent.start
                    out = data if offset == start and end - offset == len(data) else data[offset - start:end - start]
                    self._note_read(offset, end)
                    victims = self._victims
                    if victims:
                        self._victims = []
        if out is None:
            return self._read_slow(offset, end)
        if victims:  # other readers' prefetch is stopped without this reader's lock held
            self._stop_others(victims)
        return out

    def _read_slow(self, offset: int, end: int) -> bytes:
        pieces: list[memoryview] = []
        with self._lock:
            if self._closed:
                raise ServerError(f"read after close: {self.name}")
            sequential = self._is_sequential(offset)
            if not sequential:
                self._new_run(offset)
            pos = offset
            deadline = time.monotonic() + self.settings.wait_timeout
            while pos < end:
                extent = self._extent_at(pos)
                if extent is not None and extent.data is not None:
                    stop = min(end, extent.end)
                    pieces.append(memoryview(extent.data)[pos - extent.start: stop - extent.start])
                    self._credit = self._credit_max
                    if sequential and self._last_end is not None and stop > self._last_end:
                        self._last_end = stop  # the pump measures its lead from here
                    if not self._sequential:
                        self._extents[extent.start] = self._extents.pop(extent.start)  # recently used
                    pos = stop
                    continue
                self._check_failure()
                if extent is None and sequential:
                    self._wait(pos, end, deadline)
                elif extent is None:
                    self._fetch_here(pos, end)
                else:
                    self._wait_for(extent, deadline)
            self._note_read(offset, end, sequential)
            victims, self._victims = self._victims, []
        self._stop_others(victims)
        if self._budget.over:
            self._budget.reclaim(self)
        if len(pieces) == 1:
            piece = pieces[0]
            whole = piece.obj
            return whole if len(piece) == len(whole) else bytes(piece)  # type: ignore[arg-type]
        return b"".join(pieces)

    def _is_sequential(self, offset: int) -> bool:
        last = self._last_end
        return last is not None and last - self._slack <= offset <= max(last, self._cursor) + self._ahead_slack

    def _new_run(self, offset: int) -> None:
        self._run_start = offset
        self._last_end = None
        self._sequential = False
        self._demand = 0
        self._cursor = offset
        self._resume_at = 0

    def _note_read(self, offset: int, end: int, sequential: bool | None = None) -> None:
        """Record a read: the sequential run, the blocks behind it, the pump. ``sequential``: as judged
        when a slow read began (it may have moved ``_last_end`` since)."""
        self.last_used = time.monotonic()
        self._credit = self._credit_max
        last = self._last_end
        if end - offset > self._ahead_slack // 2 - self._first and end - offset <= self._block:
            self._ahead_slack = self._first + 2 * (end - offset)  # the kernel's parallel reads of that size
        if sequential is None:
            sequential = self._is_sequential(offset)
        if sequential and last is not None:
            self._sequential = True
            if end > last:
                self._last_end = end
            limit = offset - self._keep_behind
            starts = self._starts
            while starts and starts[0] < limit:
                first = self._extents[starts[0]]
                if first.end > limit or first.data is None:
                    break
                self._drop(first)
            if self._pumping:
                if self._paused and self._last_end >= self._resume_at:  # type: ignore[operator]
                    self._space.notify()
            elif (self._last_end - self._run_start >= self._first  # type: ignore[operator]
                  and self._last_end >= self._resume_at):  # type: ignore[operator]
                self._start_pump()
        else:
            if last is not None:
                self._run_start = offset
                self._sequential = False
                self._demand = 0
                self._resume_at = 0
                self._cursor = offset
            self._last_end = end

    # -- fetching -----------------------------------------------------------------------------------

    def _fetch_here(self, pos: int, end: int) -> None:
        """Fetch ``[pos, max(end, pos + first_block))`` in this thread (a random read); lock held. A file
        no bigger than the first block is fetched whole at its first read, wherever that falls: DICOM
        tools read a file's tail before its head (dcm2niix), which cost a second round trip."""
        if not self._starts and self.size <= self._first:
            pos = 0
        stop = min(max(end, pos + self._first), pos + self._max_ahead, self._next_start(pos), self.size)
        extent = self._insert(pos, stop)
        self._lock.release()
        try:
            data, error = self._call_fetch(pos, stop)
        finally:
            self._lock.acquire()
        self._complete(extent, data, error)
        if extent.error is not None:
            raise extent.error

    def _call_fetch(self, start: int, stop: int) -> tuple[bytes | None, XNATError | None]:
        """``fetch`` without the lock; an unexpected exception becomes a TransportError."""
        try:
            return self._fetch(start, stop), None
        except XNATError as exc:
            return None, exc
        except (OSError, ValueError) as exc:
            return None, TransportError(f"Reading {self.name} failed: {exc}")

    def _complete(self, extent: _Extent, data: bytes | None, error: XNATError | None) -> None:
        """Store a finished fetch (lock held): its bytes, or its error for the readers waiting on it."""
        self.fetches += 1
        if error is None and data is not None and len(data) != extent.end - extent.start:
            error = ServerError(f"The server sent {len(data)} bytes at offset {extent.start} of "
                                f"{self.name or 'a file'} ({self.size} bytes); expected {extent.end - extent.start}")
        if error is not None or self._closed or self._extents.get(extent.start) is not extent:
            self._remove(extent)
            if error is not None:
                extent.error = error
                if self.settings.failure_memory > 0:
                    self._failure = (time.monotonic(), error)
            elif extent.error is None:
                extent.error = ServerError(f"read after close: {self.name}")
            self._cond.notify_all()
            return
        assert data is not None
        extent.data = data
        self.fetched_bytes += len(data)
        self._bytes += len(data)
        self._budget.add(len(data))
        if self._sink is not None:
            self._feed_sink()
        if self._bytes > self._capacity:
            self._evict(extent)
        self._cond.notify_all()

    def _wait(self, pos: int, end: int, deadline: float) -> None:
        """Have the pump fetch from ``pos`` (a sequential read's gap); wait (bounded) until it is being
        fetched or cached."""
        while self._extent_at(pos) is None:
            self._check_failure_since(deadline)
            # only the next block: the pump fetching all of a large read ahead of it would evict its own
            # blocks before the read takes them (a read larger than the cache)
            self._demand = max(self._demand, min(end, pos + self._block))
            if self._cursor > pos or self._cursor < pos - max(self._slack, self._ahead_slack):
                self._cursor = pos
            if self._credit <= 0 and self._cursor == pos:
                self._credit = 1  # what this read needs next is always fetched
            if not self._pumping:
                self._start_pump()
            elif self._paused:
                self._space.notify()
            self._wait_once(deadline)

    def _wait_once(self, deadline: float) -> None:
        """One bounded wait for the prefetch thread (lock held); RequestTimeout past ``deadline``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout(f"No data for {self.name} within {self.settings.wait_timeout:.0f} s")
        self.waits += 1
        self._cond.wait(min(remaining, 1.0))
        if self._closed:
            raise ServerError(f"read after close: {self.name}")

    def _wait_for(self, extent: _Extent, deadline: float) -> None:
        """Wait (bounded) for a fetch in progress; its error is this read's error."""
        while extent.data is None and extent.error is None:
            self._wait_once(deadline)
        if extent.error is not None:
            raise extent.error

    def _check_failure(self) -> None:
        failure = self._failure
        if failure is not None and time.monotonic() - failure[0] < self.settings.failure_memory:
            raise repeated(failure[1])

    def _check_failure_since(self, deadline: float) -> None:
        """A pump failure after this read began is this read's error."""
        failure = self._failure
        if failure is not None and failure[0] >= deadline - self.settings.wait_timeout:
            raise failure[1]
        if self._pump_error is not None:
            error, self._pump_error = self._pump_error, None
            raise error

    # -- the pump (sequential read-ahead) -------------------------------------------------------------

    def _start_pump(self) -> None:
        """Start the background pump (lock held)."""
        if self._pumping or self._closed:
            return
        self._generation += 1
        self._pumping = True
        self._paused = False
        self._pump_error = None
        generation = self._generation
        thread = threading.Thread(target=self._pump, args=(generation,), name=f"xnatfs-read-{self.name[-24:]}",
                                  daemon=True)
        thread.start()
        self._victims.extend(v for v in self._budget.stream_started(self) if isinstance(v, BlockReader))

    def _stop_others(self, victims: list[BlockReader]) -> None:
        for victim in victims:
            victim.stop_prefetch()

    def _next_job(self) -> tuple[_Extent, int, int] | None:
        """The next block to prefetch, inserted as being fetched; None to pause (lock held)."""
        position = self._last_end if self._last_end is not None else self._run_start
        cursor = self._cursor
        if self._demand <= cursor and (cursor < position or cursor > position + self._max_ahead + self._slack):
            cursor = position  # (a waiting read places the cursor itself)
        while cursor < self.size:  # skip what is cached or being fetched
            extent = self._extent_at(cursor)
            if extent is None:
                break
            cursor = extent.end
        self._cursor = cursor
        if cursor >= self.size:
            self._resume_at = self.size + 1  # nothing left: no pump until a new run
            return None
        if self._credit <= 0:
            return None
        if self._demand <= cursor:
            if not self._sequential:
                return None
            consumed = position - self._run_start
            target = min(self._max_ahead, max(self._block, 2 * consumed))
            ahead = cursor - position
            if ahead >= target or (self._budget.over and ahead >= self._block):
                self._resume_at = cursor - target // 2
                return None
        stop = min(cursor + self._block, self._next_start(cursor), self.size)
        self._cursor = stop
        self._credit -= 1
        return self._insert(cursor, stop), cursor, stop

    def _pump(self, generation: int) -> None:
        try:
            while True:
                with self._lock:
                    while True:
                        if self._closed or generation != self._generation:
                            return
                        job = self._next_job()
                        if job is not None:
                            break
                        self._paused = True
                        if not self._space.wait(PUMP_IDLE) and generation == self._generation:
                            job = self._next_job()
                            if job is None:
                                return
                            break
                    self._paused = False
                extent, start, stop = job
                data, error = self._call_fetch(start, stop)
                with self._lock:
                    self._complete(extent, data, error)
                    if error is not None:
                        if not self.settings.failure_memory and generation == self._generation:
                            self._pump_error = error
                        return
                if self._budget.over:
                    self._budget.reclaim(self)
        finally:
            with self._lock:
                if generation == self._generation:
                    self._pumping = False
                    self._paused = False
                    self._budget.stream_ended(self)
                self._cond.notify_all()

    def stop_prefetch(self) -> None:
        """Stop the pump if the reader is idle (too many readers prefetching)."""
        with self._lock:
            if time.monotonic() - self.last_used > BUSY:
                self._stop_pump()

    def _stop_pump(self) -> None:
        if self._pumping:
            self._generation += 1
            self._pumping = False
            self._budget.stream_ended(self)
            self._space.notify_all()
            self._cond.notify_all()

    # -- the extents ------------------------------------------------------------------------------------

    def _extent_at(self, pos: int) -> _Extent | None:
        i = bisect.bisect_right(self._starts, pos) - 1
        if i < 0:
            return None
        extent = self._extents[self._starts[i]]
        return extent if pos < extent.end else None

    def _next_start(self, pos: int) -> int:
        i = bisect.bisect_right(self._starts, pos)
        return self._starts[i] if i < len(self._starts) else self.size

    def _insert(self, start: int, stop: int) -> _Extent:
        extent = _Extent(start, stop)
        bisect.insort(self._starts, start)
        self._extents[start] = extent
        return extent

    def _remove(self, extent: _Extent) -> None:
        if self._extents.get(extent.start) is extent:
            del self._extents[extent.start]
            del self._starts[bisect.bisect_left(self._starts, extent.start)]

    def _drop(self, extent: _Extent) -> None:
        """Forget a cached extent and give its bytes back."""
        self._remove(extent)
        if extent.data is not None:
            self._bytes -= len(extent.data)
            self._budget.remove(len(extent.data))

    def _evict(self, keep: _Extent) -> None:
        """Drop the oldest cached extents beyond the per-file capacity (never ``keep``): first those
        outside the sequential run's read-ahead, which the reader is about to take."""
        low = (self._last_end or 0) - self._slack
        for spare_ahead in (True, False):
            for extent in list(self._extents.values()):
                if self._bytes <= self._capacity:
                    return
                if extent is keep or extent.data is None:
                    continue
                if spare_ahead and self._sequential and low <= extent.start < self._cursor:
                    continue
                self._drop(extent)

    def _feed_sink(self) -> None:
        sink = self._sink
        assert sink is not None
        while self._sink_pos < self.size:
            extent = self._extent_at(self._sink_pos)
            if extent is None or extent.data is None:
                return
            sink.write(self._sink_pos, extent.data[self._sink_pos - extent.start:]
                       if self._sink_pos != extent.start else extent.data)
            self._sink_pos = extent.end
        sink.finish()
        self._sink = None

    # -- budget, close ------------------------------------------------------------------------------------

    def shed(self) -> None:
        """Drop every cached block and stop the pump (budget pressure), unless the reader is busy."""
        with self._lock:
            if self._closed or time.monotonic() - self.last_used < BUSY:
                return
            self._stop_pump()
            for extent in list(self._extents.values()):
                if extent.data is not None:
                    self._drop(extent)

    def trim(self, max_bytes: int) -> int:
        """Drop the oldest cached blocks until at most ``max_bytes`` are cached; returns bytes freed."""
        with self._lock:
            before = self._bytes
            for extent in list(self._extents.values()):
                if self._bytes <= max_bytes:
                    break
                if extent.data is not None:
                    self._drop(extent)
            return before - self._bytes

    def close(self) -> None:
        """Stop the pump, free every block, abandon an unfinished sink, close the fetch side."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            log.debug("closed %s: %d fetch(es), %d byte(s), %d wait(s)", self.name, self.fetches,
                      self.fetched_bytes, self.waits)
            self._stop_pump()
            for extent in list(self._extents.values()):
                self._drop(extent)
            if self._sink is not None:
                self._sink.abandon()
                self._sink = None
            self._cond.notify_all()
        close = getattr(self._fetch, "close", None)
        if close is not None:
            close()

    @property
    def closed(self) -> bool:
        return self._closed


__all__ = ["BlockReader", "CacheSink", "Fetch", "repeated"]
