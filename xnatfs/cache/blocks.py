"""BlockReader: random-access reads of a remote file through a bounded cache with read-ahead.

The only I/O is the ``fetch(start, end)`` callable it is given (bytes ``[start, end)``), so the cache
is tested with a counting fake and used unchanged by the library (``File.open()``) and the mount.
This follows fsspec's BlockCache/ReadAheadCache seam (style-anchors §5).

Policy:

- The **first** fetch is small (``first_block_size``): file managers sniff the first 16 KiB of many
  files, and a thumbnailer must not pull megabytes for that.
- **Sequential** reads (each starting where the last one ended, or a little after) grow the
  read-ahead window by doubling, up to ``max_readahead``, so a large copy costs few requests.
- A **random** read resets the window: it fetches what was asked, rounded to ``first_block_size``.
- Memory is bounded: fetched chunks are kept in least-recently-used order and evicted beyond
  ``max_blocks_per_handle * block_size`` bytes. A single read larger than that is still answered
  (the caller asked for the bytes), in fetches of at most ``max_readahead``.

Thread-safe: one lock per reader; fetches for one reader run one at a time.
Imports the standard library, :mod:`xnatfs.settings` and :mod:`xnatfs.errors` only.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable

from xnatfs.errors import ServerError
from xnatfs.settings import ReadSettings

Fetch = Callable[[int, int], bytes]


class BlockReader:
    """Reads ``[offset, offset + length)`` of a file of ``size`` bytes through ``fetch``."""

    def __init__(self, fetch: Fetch, size: int, settings: ReadSettings | None = None) -> None:
        settings = settings or ReadSettings()
        if size < 0:
            raise ValueError("size must be >= 0")
        self._fetch = fetch
        self.size = size
        self.align = max(1, settings.first_block_size)
        self.capacity = max(self.align, settings.max_blocks_per_handle * settings.block_size)
        self.max_window = max(self.align, min(settings.max_readahead, self.capacity // 2))
        self._window = self.align
        self._last_end: int | None = None
        self._chunks: OrderedDict[int, bytes] = OrderedDict()
        self._starts: list[int] = []
        self._bytes = 0
        self._lock = threading.Lock()
        self.fetches = 0
        self.fetched_bytes = 0

    def __repr__(self) -> str:
        return f"BlockReader(size={self.size}, cached={self._bytes}, window={self._window}, fetches={self.fetches})"

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    @property
    def window(self) -> int:
        """The size of the next sequential fetch."""
        return self._window

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)``, clipped to the file; fewer only at end of file."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        with self._lock:
            end = min(offset + length, self.size)
            if offset >= end:
                return b""
            sequential = self._last_end is not None and 0 <= offset - self._last_end <= self.align
            if not sequential and self._last_end is not None:
                self._window = self.align
            pieces: list[bytes] = []
            pos = offset
            while pos < end:
                hit = self._lookup(pos)
                if hit is None:
                    self._fill(pos, end, sequential)
                    hit = self._lookup(pos)
                    assert hit is not None
                start, data = hit
                piece = data[pos - start: end - start]
                pieces.append(piece)
                pos += len(piece)
            self._last_end = end
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _lookup(self, pos: int) -> tuple[int, bytes] | None:
        i = bisect.bisect_right(self._starts, pos) - 1
        if i < 0:
            return None
        start = self._starts[i]
        data = self._chunks[start]
        if pos >= start + len(data):
            return None
        self._chunks.move_to_end(start)
        return start, data

    def _fill(self, pos: int, end: int, sequential: bool) -> None:
        """Fetch a chunk covering ``pos``, sized by the read-ahead policy, not overlapping cached chunks."""
        i = bisect.bisect_right(self._starts, pos)
        prev_end = 0
        if i > 0:
            prev = self._starts[i - 1]
            prev_end = prev + len(self._chunks[prev])
        next_start = self._starts[i] if i < len(self._starts) else self.size
        start = max(prev_end, pos - pos % self.align)
        want = self._window if sequential else self.align
        want = max(want, min(end - start, self.max_window))
        stop = min(start + want, next_start, self.size)
        if stop - start < self.align and not sequential:
            stop = min(start + self.align, next_start, self.size)
        if sequential:
            self._window = min(self._window * 2, self.max_window)
        data = self._fetch(start, stop)
        self.fetches += 1
        if len(data) > stop - start:
            data = data[: stop - start]
        self.fetched_bytes += len(data)
        if not data or start + len(data) <= pos:
            raise ServerError(f"The server sent {len(data)} bytes at offset {start} of a {self.size}-byte file; "
                              f"expected {stop - start}")
        self._store(start, bytes(data))

    def _store(self, start: int, data: bytes) -> None:
        bisect.insort(self._starts, start)
        self._chunks[start] = data
        self._bytes += len(data)
        while self._bytes > self.capacity and len(self._chunks) > 1:
            oldest, old = next(iter(self._chunks.items()))
            if oldest == start:
                break
            self._drop(oldest, old)

    def _drop(self, start: int, data: bytes) -> None:
        del self._chunks[start]
        del self._starts[bisect.bisect_left(self._starts, start)]
        self._bytes -= len(data)

    def trim(self, max_bytes: int) -> int:
        """Evict least recently used chunks until at most ``max_bytes`` are cached; returns bytes freed."""
        freed = 0
        with self._lock:
            while self._bytes > max_bytes and self._chunks:
                start, data = next(iter(self._chunks.items()))
                self._drop(start, data)
                freed += len(data)
        return freed

    def clear(self) -> None:
        """Drop every cached chunk and forget the access pattern."""
        with self._lock:
            self._chunks.clear()
            self._starts.clear()
            self._bytes = 0
            self._window = self.align
            self._last_end = None


__all__ = ["BlockReader", "Fetch"]
