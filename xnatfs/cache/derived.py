"""What was derived from an object, kept while the same object (the same one, not an equal one) comes
back.

A warm ``ls -l`` of a 5,000-file folder goes down three layers, each turning the listing below it
into its own form: the tree's nodes into a list, the writable mount's nodes into nodes that show
write permission, the adapter's entries into the ``struct stat`` the kernel takes. Each layer keeps
handing out the same object while its input is the same object, so the layer above recognises an
unchanged listing in one comparison, and nothing is built per file (a writable mount spent 2.8 ms
of Python per listing of 5,000 files, against 0.2 ms for a read-only one).

A kept value holds its source, so the source's ``id`` cannot be reused while it is kept. Values are
shared: callers must not change them. Thread-safe.

Imports the standard library and cachetools.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import cachetools

S = TypeVar("S")
V = TypeVar("V")


class DerivedCache(Generic[S, V]):
    """``derive(source)`` for the last ``maxsize`` sources, by identity (see the module docstring)."""

    def __init__(self, maxsize: int) -> None:
        self._kept: cachetools.LRUCache[int, tuple[S, V]] = cachetools.LRUCache(maxsize)
        self._lock = threading.Lock()

    def get(self, source: S, derive: Callable[[S], V]) -> V:
        """The value derived from this very ``source`` (derived now if it is not kept; two threads may
        both derive it, and the later one's is kept)."""
        key = id(source)
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept[0] is source:
            return kept[1]
        value = derive(source)
        with self._lock:
            self._kept[key] = (source, value)
        return value


__all__ = ["DerivedCache"]
