"""Reading an open file: a bounded window of bytes fed by ranged GETs and one background stream.

Per open file (:class:`RemoteFile`):

- The **first** read, and any read that jumps elsewhere, costs one ranged ``GET`` of a small block
  (``first_block``, 128 KiB): file managers sniff the start of many files and thumbnailers read
  headers, and neither must pull megabytes.
- Once reads are **sequential** (the second read that starts where the last ended), a background
  thread opens one ``GET`` with ``Range: bytes=<pos>-`` and keeps reading it into the window ahead
  of the reader. The read-ahead grows with the run (as far ahead as the reader has read since the
  stream started, at least two chunks, at most ``max_ahead``). The request stays in flight for the
  whole sequential run, so a distant server costs its latency once, not per kernel read (the
  kernel asks for 128 KiB at a time). TCP flow control holds the server back while the window is full.
- A **random** read stops the stream and resets the window; ``keep_behind`` bytes behind the reader
  stay so that the kernel's slightly out-of-order parallel reads still hit.
- No answer is taken on trust (:mod:`xnatfs.vfs.answers`): a 206 must match its range, a 200 must be
  as long as the file (a login page is an error, never the file's bytes, and not taken as a sign
  that the server ignores ``Range``).
- If the server **ignores Range** (200 with the whole body, as real XNAT may; xnat-rest-spec §13.2),
  that response becomes the handle's stream: bytes before the wanted offset are skipped, reads go
  forward; a backward jump outside the window starts again from the beginning. The first such answer
  is logged once and later files go straight to streaming.

Memory: each window (:mod:`xnatfs.vfs.window`) holds at most ``max_ahead + keep_behind`` (+ one
chunk); all windows together are kept near ``total_budget`` by
:class:`~xnatfs.vfs.readpolicy.ReadBudget`, which makes the least recently used idle files drop
their read-ahead when the total is exceeded, and caps the number of live streams. Bytes a waiting
reader needs are always fetched, so the budget never deadlocks a read.

Every wait is bounded: socket reads have the session's read timeout, and a reader waits at most
``wait_timeout`` for the stream before failing with :class:`~xnatfs.errors.RequestTimeout`. A failed
read is remembered for ``failure_memory`` seconds: the kernel's own retries of the same pages (and
other reads of the file that need the server) get the same error at once instead of waiting again.

Thread-safe: one lock per file (shared by the FUSE threads and its stream thread; readers and the
stream wait on two conditions of it); the budget has its own lock and never calls into a file while
holding it.
"""

from __future__ import annotations

import logging
import threading
import time

from xnatfs.errors import RequestTimeout, ServerError, TransportError, XNATError
from xnatfs.vfs.answers import check_range, check_whole_file
from xnatfs.vfs.readpolicy import CacheSink, Opener, RangeStream, RangeSupport, ReadBudget, ReaderSettings
from xnatfs.vfs.window import Blocks, Window

log = logging.getLogger(__name__)


class RecentFailure(XNATError):
    """A read refused at once because a read of the same open file failed moments ago (the kernel
    retrying a page): the same errno, logged at debug level (the first failure was logged)."""

    log_level = logging.DEBUG

    def __init__(self, cause: XNATError) -> None:
        super().__init__(f"{cause} (the same error again)")
        self.errno = cause.errno


class RemoteFile:
    """One open remote file of ``size`` bytes (see the module docstring)."""

    #: attempts to place a read in the window or a block before fetching it directly (concurrent
    #: readers of one handle may move the window between a wait and the slice)
    ATTEMPTS = 4

    def __init__(self, opener: Opener, size: int, settings: ReaderSettings, budget: ReadBudget,
                 ranges: RangeSupport, *, name: str = "", sink: CacheSink | None = None) -> None:
        self._open = opener
        self.size = size
        self.settings = settings
        self.name = name
        self._budget = budget
        self._ranges = ranges
        #: one lock; readers wait on ``_cond`` for data, the stream thread on ``_space`` for room
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        self._paused = False
        self._window = Window(budget, size, sink)
        self._blocks = Blocks(budget, settings.keep_behind)
        self._last_end: int | None = None
        # the background stream
        self._generation = 0
        self._streaming = False
        self._stream_error: XNATError | None = None
        self._demand = 0
        self._run_start = 0
        self._victims: list[RemoteFile] = []
        self._closed = False
        self._failure: tuple[float, XNATError] | None = None
        self.last_used = time.monotonic()
        self.requests = 0
        self.waits = 0
        budget.register(self)

    def __repr__(self) -> str:
        return f"RemoteFile({self.name!r}, size={self.size}, window=[{self._window.start}, {self._window.end}))"

    # -- public -----------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return len(self._window) + self._blocks.bytes

    @property
    def buffered_ahead(self) -> int:
        window = self._window
        return max(0, window.end - (self._last_end or window.start)) + self._blocks.bytes

    def read(self, offset: int, size: int) -> bytes:
        """Bytes ``[offset, offset + size)`` clipped to the file; fewer only at end of file."""
        if offset < 0 or size < 0:
            raise ValueError("offset and size must be >= 0")
        end = min(offset + size, self.size)
        if offset >= end:
            return b""
        window = self._window
        with self._lock:  # the lock itself, not the Condition: its C-level context manager is cheaper
            if window.start <= offset and end <= window.end and not self._closed:
                # the common case of a sequential run: the bytes are in the window (kept short: it runs
                # once per 128 KiB kernel read)
                data = window.slice(offset, end)
                self._last_end = end
                self.last_used = time.monotonic()
                if offset - window.start > self.settings.keep_behind + self.settings.chunk:
                    window.trim_behind(offset, self.settings.keep_behind)
                if self._paused and not self._should_pause():
                    self._space.notify()
                return data
            if self._closed:
                raise ServerError(f"read after close: {self.name}")
            self.last_used = time.monotonic()
            failure = self._failure
            if failure is not None and self.last_used - failure[0] < self.settings.failure_memory:
                raise RecentFailure(failure[1])
            try:
                data = self._read_locked(offset, end)
            except XNATError as exc:
                if self.settings.failure_memory > 0:
                    self._failure = (time.monotonic(), exc)
                    self._cond.notify_all()  # readers waiting for the same stream fail now, too
                raise
            self._last_end = end
            victims, self._victims = self._victims, []
            if self._paused and not self._should_pause():
                self._space.notify()
        for victim in victims:
            victim.stop_idle_stream()
        if self._budget.over:
            self._budget.reclaim(self)
        return data

    def _read_locked(self, offset: int, end: int) -> bytes:
        chunk = self.settings.chunk
        window = self._window
        for _attempt in range(self.ATTEMPTS):
            if window.start <= offset and end <= window.end:
                data = window.slice(offset, end)
                window.trim_behind(offset, self.settings.keep_behind)
                return data
            block = self._blocks.get(offset, end)
            if block is not None:
                return block
            has_window = self._streaming or window.end > window.start
            near_end = has_window and window.start <= offset <= window.end + chunk
            # the kernel's parallel read-ahead may deliver a run slightly out of order
            sequential = self._last_end is not None and abs(offset - self._last_end) <= self.settings.first_block
            if near_end and (self._streaming or sequential):
                self._start_stream(window.end)
                self._wait_for(end)
            elif sequential or self._ranges.supported is False:
                self._reset(offset)
                self._start_stream(offset)
                self._wait_for(end)
            else:
                self._fetch_block(offset, end)
        return self._fetch_direct(offset, end)

    def close(self) -> None:
        """Stop the stream and free the window (the stream thread exits at its next chunk)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            log.debug("closed %s: %d request(s), %d wait(s) for data", self.name, self.requests, self.waits)
            self._stop_stream()
            self._window.clear()
            self._blocks.clear()
            self._cond.notify_all()
            self._space.notify_all()

    def shed(self) -> None:
        """Drop read-ahead beyond the reader's position and the blocks; stop the stream (budget pressure)."""
        with self._cond:
            if self._closed or time.monotonic() - self.last_used < 0.2:
                return
            self._stop_stream()
            self._window.drop_from(self._last_end if self._last_end is not None else self._window.start)
            self._blocks.clear()
            self._cond.notify_all()

    def _reset(self, offset: int) -> None:
        self._stop_stream()
        self._window.reset(offset)

    # -- blocks for random reads -----------------------------------------------------------------------

    def _fetch_block(self, offset: int, end: int) -> None:
        """Fetch ``[offset, max(end, offset + first_block))`` with one ranged GET into the block cache."""
        stop = min(self.size, max(end, offset + self.settings.first_block))
        data = self._get_range(offset, stop)
        if data is None:
            return  # the server ignores Range: the next attempt streams
        if len(data) < end - offset:
            raise ServerError(f"The server sent {len(data)} bytes at offset {offset} of {self.name}; "
                              f"expected {stop - offset}")
        if offset == self._window.end and not self._streaming:
            self._window.append(data)  # contiguous with the window (the file's first block): a stream may continue it
            return
        self._blocks.put(offset, data)

    def _get_range(self, start: int, stop: int) -> bytes | None:
        """One ranged GET; None (and Range marked unsupported) if the server answers 200."""
        self.requests += 1
        stream = self._open(start, stop)
        try:
            if stream.status != 206:
                check_whole_file(stream, self.size, self.name)
                self._ranges.saw(False)
                return None
            check_range(stream, start, self.name)
            self._ranges.saw(True)
            return stream.read(stop - start)
        finally:
            stream.close()

    def _fetch_direct(self, offset: int, end: int) -> bytes:
        """The bytes of one read, fetched on their own (when concurrent readers keep moving the window)."""
        if self._ranges.supported is not False:
            data = self._get_range(offset, end)
            if data is not None:
                return data
        self.requests += 1
        stream = self._open(0, None)
        try:
            check_whole_file(stream, self.size, self.name)
            skip = offset
            while skip > 0:
                piece = stream.read(min(self.settings.chunk, skip))
                if not piece:
                    break
                skip -= len(piece)
            return stream.read(end - offset)
        finally:
            stream.close()

    # -- the background stream -----------------------------------------------------------------------

    def _start_stream(self, start: int) -> None:
        """Start a stream at ``start`` (== the window end) unless one is running."""
        if self._streaming or start >= self.size:
            return
        self._generation += 1
        self._streaming = True
        self._stream_error = None
        self._run_start = start
        generation = self._generation
        self.requests += 1
        thread = threading.Thread(target=self._run_stream, args=(generation, start),
                                  name=f"xnatfs-stream-{self.name[-24:]}", daemon=True)
        thread.start()
        # stopped by read() once this file's lock is released (two files never lock each other)
        self._victims.extend(self._budget.stream_started(self))

    def stop_idle_stream(self) -> None:
        with self._cond:
            if time.monotonic() - self.last_used > 0.2:
                self._stop_stream()

    def _stop_stream(self) -> None:
        if self._streaming:
            self._generation += 1
            self._streaming = False
            self._budget.stream_ended(self)
            self._cond.notify_all()
            self._space.notify_all()

    def _wait_for(self, end: int) -> None:
        """Wait (bounded) until the window reaches ``end``, the stream fails, or it ends early."""
        self._demand = max(self._demand, end)
        if self._paused:
            self._space.notify()
        started = time.monotonic()
        deadline = started + self.settings.wait_timeout
        restarts = 0
        while self._window.end < end:
            if self._failure is not None and self._failure[0] >= started:
                raise RecentFailure(self._failure[1])
            if self._stream_error is not None:
                error, self._stream_error = self._stream_error, None
                raise error
            if not self._streaming:
                if restarts < 2 and self._window.end < self.size:
                    # the stream stopped (shed under budget pressure, or ended early): go on from the window's end
                    restarts += 1
                    self._start_stream(self._window.end)
                    continue
                raise ServerError(f"{self.name}: the server sent {self._window.end} of {self.size} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeout(f"No data for {self.name} within {self.settings.wait_timeout:.0f} s")
            self.waits += 1
            self._cond.wait(min(remaining, 1.0))

    def _run_stream(self, generation: int, start: int) -> None:
        stream: RangeStream | None = None
        try:
            stream = self._open(start, None)
            skip = 0
            if stream.status == 206:
                check_range(stream, start, self.name)
                self._ranges.saw(True)
            else:
                check_whole_file(stream, self.size, self.name)
                if start > 0:
                    self._ranges.saw(False)
                skip = start
            self._pump(stream, generation, skip)
        except (XNATError, OSError, ValueError) as exc:
            with self._cond:
                if generation == self._generation and not self._closed:
                    self._stream_error = exc if isinstance(exc, XNATError) else TransportError(
                        f"Reading {self.name} failed: {exc}")
                    self._cond.notify_all()
        finally:
            if stream is not None:
                stream.close()
            with self._cond:
                if generation == self._generation:
                    self._streaming = False
                    self._budget.stream_ended(self)
                self._cond.notify_all()

    def _pump(self, stream: RangeStream, generation: int, skip: int) -> None:
        chunk = self.settings.chunk
        while skip > 0:
            data = stream.read(min(chunk, skip))
            if not data:
                return
            skip -= len(data)
            with self._cond:
                if generation != self._generation:
                    return
        while True:
            with self._cond:
                while generation == self._generation and self._should_pause():
                    self._paused = True
                    self._space.wait(0.5)
                self._paused = False
                if generation != self._generation:
                    return
            data = stream.read(chunk)
            if not data:
                return
            with self._cond:
                if generation != self._generation:
                    return
                self._window.append(data)
                self._cond.notify_all()
                if self._window.end >= self.size:
                    return
            if self._budget.over:
                self._budget.reclaim(self)

    def _should_pause(self) -> bool:
        """Hold the stream while the reader has enough ahead (or the budget is spent) and needs nothing.

        "Enough" grows with the sequential run: as many bytes ahead as the reader has consumed since
        the stream started (at least two chunks), up to ``max_ahead``; a random read starts a new run.
        A paused stream resumes only when half of that is consumed, so the stream thread and the
        readers do not wake each other for every kernel read.
        """
        if self._demand > self._window.end:
            return False
        position = self._last_end if self._last_end is not None else self._window.start
        ahead = self._window.end - position
        limit = min(self.settings.max_ahead, max(2 * self.settings.chunk, position - self._run_start))
        if self._paused:
            limit //= 2
        return ahead >= limit or (self._budget.over and ahead >= self.settings.chunk)


__all__ = ["RemoteFile", "RecentFailure", "ReadBudget", "ReaderSettings", "RangeSupport", "Opener", "CacheSink"]
