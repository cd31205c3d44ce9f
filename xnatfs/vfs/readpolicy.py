"""What bounds the readers of open files: their settings, the shared memory budget, and what the
server was seen to do with ``Range``.

:class:`ReadBudget` is shared by every open file of a mount. It counts the bytes they buffer and
their live streams; when the total passes ``total_budget`` it makes the least recently used *idle*
files drop their read-ahead (:meth:`BudgetMember.shed`), and beyond ``max_streams`` it names the
least recently used streams to stop. It never calls into a file while holding its own lock, so two
files never wait on each other.

Thread-safe. Imports the standard library and :mod:`xnatfs.settings` only.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from xnatfs.settings import MiB, ReadSettings

log = logging.getLogger(__name__)

KiB = 1024
#: how long the mount remembers a failed read of an open file (see ReaderSettings)
FAILURE_MEMORY = 2.0


class RangeStream(Protocol):
    """A streamed response: ``status`` 206 (ranged, with ``Content-Range``) or 200 (the whole file)."""

    status: int
    headers: object

    def read(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


#: ``open_range(start, end_or_None)`` → a streamed response (206 ranged, or 200 whole file)
Opener = Callable[[int, "int | None"], RangeStream]


@dataclass(frozen=True)
class ReaderSettings:
    """Sizes in bytes, times in seconds (see :mod:`xnatfs.vfs.reader`).

    ``chunk`` (1 MiB) is the size of one socket read of the stream: measured on loopback, 256 KiB
    reads were up to 15% slower (more Python per byte) and 4 MiB reads about 25% slower.

    ``failure_memory`` (0: off; the mount uses :data:`FAILURE_MEMORY`): after a read of an open file
    failed, further reads of it that need the server fail at once with the same error for this long.
    The kernel retries a failed page read itself (its read-ahead, then a synchronous read of the same
    page), so without it one ``read()`` of a tool would wait for a hung server two or three times over.
    """

    first_block: int = 128 * KiB
    chunk: int = 1 * MiB
    max_ahead: int = 16 * MiB
    keep_behind: int = 1 * MiB
    total_budget: int = 96 * MiB
    max_streams: int = 32
    wait_timeout: float = 30.0
    failure_memory: float = 0.0

    @classmethod
    def from_read_settings(cls, read: ReadSettings, wait_timeout: float,
                           failure_memory: float = FAILURE_MEMORY) -> ReaderSettings:
        return cls(first_block=read.first_block_size, max_ahead=read.max_readahead,
                   total_budget=read.total_budget, wait_timeout=wait_timeout, failure_memory=failure_memory)


class RangeSupport:
    """Whether the server honours ``Range`` (unknown until the first answer); logged once."""

    def __init__(self) -> None:
        self.supported: bool | None = None

    def saw(self, ranged: bool) -> None:
        if ranged:
            if self.supported is None:
                self.supported = True
            return
        if self.supported is not False:
            self.supported = False
            log.warning("The server ignores HTTP Range requests; files are read as forward streams "
                        "(random access re-reads from the start)")


class BudgetMember(Protocol):
    """What the budget needs of an open file."""

    last_used: float

    @property
    def buffered_ahead(self) -> int: ...

    def shed(self) -> None: ...

    def stop_idle_stream(self) -> None: ...


class ReadBudget:
    """The bytes buffered by all open files together, and the number of live streams. Thread-safe."""

    def __init__(self, total: int, max_streams: int = 32) -> None:
        self.total = total
        self.max_streams = max_streams
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._files: weakref.WeakSet[BudgetMember] = weakref.WeakSet()
        self._streams: dict[int, BudgetMember] = {}

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.used += nbytes
            self.peak = max(self.peak, self.used)

    def remove(self, nbytes: int) -> None:
        with self._lock:
            self.used -= nbytes

    @property
    def over(self) -> bool:
        return self.used > self.total

    def register(self, member: BudgetMember) -> None:
        with self._lock:
            self._files.add(member)

    def reclaim(self, requester: BudgetMember) -> None:
        """Make idle files (least recently used first) drop their read-ahead until under budget."""
        with self._lock:
            if self.used <= self.total:
                return
            idle = sorted((f for f in self._files if f is not requester and f.buffered_ahead > 0),
                          key=lambda f: f.last_used)
        for victim in idle:
            victim.shed()
            if not self.over:
                return

    def stream_started(self, member: BudgetMember) -> list[BudgetMember]:
        """Record a live stream; return the least recently used streams beyond ``max_streams``."""
        with self._lock:
            self._streams[id(member)] = member
            if len(self._streams) <= self.max_streams:
                return []
            ordered = sorted((f for f in self._streams.values() if f is not member), key=lambda f: f.last_used)
            return ordered[: len(self._streams) - self.max_streams]

    def stream_ended(self, member: BudgetMember) -> None:
        with self._lock:
            if self._streams.get(id(member)) is member:
                del self._streams[id(member)]

    @property
    def streams(self) -> int:
        return len(self._streams)


class CacheSink(Protocol):
    """Receives a file's bytes in order from offset 0 (the on-disk cache)."""

    def write(self, offset: int, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def abandon(self) -> None: ...


__all__ = ["RangeStream", "Opener", "ReaderSettings", "RangeSupport", "ReadBudget", "BudgetMember", "CacheSink",
           "KiB", "FAILURE_MEMORY"]
