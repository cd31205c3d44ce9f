"""ReadBudget: one memory bound for every open reader of a connection (or a mount).

Each :class:`~xnatfs.cache.blocks.BlockReader` counts the bytes it caches here. When the total passes
``total``, :meth:`ReadBudget.reclaim` makes the least recently used *idle* readers drop their blocks
(:meth:`BudgetMember.shed`); the reader asking never waits for memory: the bytes a read needs are
always fetched, so the budget bounds read-ahead and caching, never progress. Beyond ``max_streams``
prefetching readers, :meth:`stream_started` names the least recently used ones to stop.

The budget never calls into a reader while holding its own lock, and readers call :meth:`reclaim`
only after releasing theirs, so two readers never wait on each other.

Thread-safe. Imports the standard library only.
"""

from __future__ import annotations

import threading
import weakref
from typing import Protocol


class BudgetMember(Protocol):
    """What the budget needs of an open reader."""

    last_used: float

    @property
    def cached_bytes(self) -> int: ...

    def shed(self) -> None: ...

    def stop_prefetch(self) -> None: ...


class ReadBudget:
    """Bytes cached by all readers together, and the readers prefetching. Thread-safe."""

    def __init__(self, total: int, max_streams: int = 32) -> None:
        self.total = total
        self.max_streams = max_streams
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._members: weakref.WeakSet[BudgetMember] = weakref.WeakSet()
        self._streams: dict[int, BudgetMember] = {}

    def __repr__(self) -> str:
        return f"ReadBudget(used={self.used}, total={self.total}, streams={len(self._streams)})"

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.used += nbytes
            if self.used > self.peak:
                self.peak = self.used

    def remove(self, nbytes: int) -> None:
        with self._lock:
            self.used -= nbytes

    @property
    def over(self) -> bool:
        return self.used > self.total

    def register(self, member: BudgetMember) -> None:
        with self._lock:
            self._members.add(member)

    def reclaim(self, requester: BudgetMember | None = None) -> None:
        """Make idle readers (least recently used first) drop their blocks until under budget."""
        with self._lock:
            if self.used <= self.total:
                return
            idle = sorted((m for m in self._members if m is not requester and m.cached_bytes > 0),
                          key=lambda m: m.last_used)
        for victim in idle:
            victim.shed()
            if not self.over:
                return

    def stream_started(self, member: BudgetMember) -> list[BudgetMember]:
        """Record a prefetching reader; return the least recently used ones beyond ``max_streams``."""
        with self._lock:
            self._streams[id(member)] = member
            if len(self._streams) <= self.max_streams:
                return []
            ordered = sorted((m for m in self._streams.values() if m is not member), key=lambda m: m.last_used)
            return ordered[: len(self._streams) - self.max_streams]

    def stream_ended(self, member: BudgetMember) -> None:
        with self._lock:
            if self._streams.get(id(member)) is member:
                del self._streams[id(member)]

    @property
    def streams(self) -> int:
        return len(self._streams)


__all__ = ["ReadBudget", "BudgetMember"]
