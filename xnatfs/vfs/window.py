"""The bytes an open file keeps in memory: a contiguous window fed by its stream, and a few blocks
fetched for random reads. Both count their bytes in the mount's :class:`~xnatfs.vfs.readpolicy.ReadBudget`.

Not thread-safe by themselves: the owning :class:`~xnatfs.vfs.reader.RemoteFile` holds its lock
around every call. Imports the standard library and :mod:`xnatfs.vfs.readpolicy` only.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict

from xnatfs.vfs.readpolicy import CacheSink, ReadBudget


class Window:
    """Contiguous bytes ``[start, end)`` of a file, in the chunks the stream delivered.

    A cache sink, if given, receives every chunk while the window grows from offset 0 without a gap,
    and is finished when the window reaches ``size``; any reset elsewhere abandons it.
    """

    def __init__(self, budget: ReadBudget, size: int, sink: CacheSink | None = None) -> None:
        self._budget = budget
        self._size = size
        self.sink = sink
        self._starts: list[int] = []
        self._chunks: list[bytes] = []
        self.start = 0
        self.end = 0

    def __len__(self) -> int:
        return self.end - self.start

    def slice(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, which the caller checked lie inside the window."""
        i = bisect.bisect_right(self._starts, start) - 1
        chunk_start, chunk = self._starts[i], self._chunks[i]
        if end - chunk_start <= len(chunk):
            return chunk[start - chunk_start: end - chunk_start]
        pieces = []
        pos = start
        while pos < end:
            chunk_start, chunk = self._starts[i], self._chunks[i]
            piece = chunk[pos - chunk_start: end - chunk_start]
            pieces.append(piece)
            pos += len(piece)
            i += 1
        return b"".join(pieces)

    def append(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink.write(self.end, data)
        self._starts.append(self.end)
        self._chunks.append(data)
        self.end += len(data)
        self._budget.add(len(data))
        if self.sink is not None and self.end >= self._size:
            self.sink.finish()
            self.sink = None

    def _drop_first(self, count: int) -> None:
        freed = sum(len(c) for c in self._chunks[:count])
        del self._chunks[:count]
        del self._starts[:count]
        self.start = self._starts[0] if self._starts else self.end
        self._budget.remove(freed)

    def reset(self, offset: int) -> None:
        """Empty the window and start it again at ``offset``."""
        self._drop_first(len(self._chunks))
        self.start = self.end = offset
        if self.sink is not None and offset != 0:
            self.abandon_sink()

    def clear(self) -> None:
        self._drop_first(len(self._chunks))
        self.abandon_sink()

    def abandon_sink(self) -> None:
        if self.sink is not None:
            self.sink.abandon()
            self.sink = None

    def trim_behind(self, offset: int, keep: int) -> None:
        """Drop whole chunks that end more than ``keep`` bytes before ``offset``."""
        limit = offset - keep
        count = 0
        while count < len(self._chunks) and self._starts[count] + len(self._chunks[count]) <= limit:
            count += 1
        if count:
            self._drop_first(count)

    def drop_from(self, offset: int) -> None:
        """Drop whole chunks that start at or after ``offset`` (read-ahead given back)."""
        while self._chunks and self._starts[-1] >= offset:
            data = self._chunks.pop()
            self._starts.pop()
            self.end -= len(data)
            self._budget.remove(len(data))


class Blocks:
    """Blocks fetched for random reads, least recently used first out beyond ``capacity`` bytes."""

    def __init__(self, budget: ReadBudget, capacity: int) -> None:
        self._budget = budget
        self._capacity = capacity
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self.bytes = 0

    def get(self, start: int, end: int) -> bytes | None:
        for offset, data in self._blocks.items():
            if offset <= start and end <= offset + len(data):
                self._blocks.move_to_end(offset)
                return data[start - offset: end - offset]
        return None

    def put(self, offset: int, data: bytes) -> None:
        old = self._blocks.pop(offset, None)
        if old is not None:
            self.bytes -= len(old)
            self._budget.remove(len(old))
        self._blocks[offset] = data
        self.bytes += len(data)
        self._budget.add(len(data))
        while self.bytes > self._capacity and len(self._blocks) > 1:
            _, evicted = self._blocks.popitem(last=False)
            self.bytes -= len(evicted)
            self._budget.remove(len(evicted))

    def clear(self) -> None:
        self._budget.remove(self.bytes)
        self._blocks.clear()
        self.bytes = 0


__all__ = ["Window", "Blocks"]
