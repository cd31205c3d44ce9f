"""A thread-safe, bounded mapping whose entries expire: the metadata cache of a connection.

cachetools' ``TTLCache`` gives the expiry (time-to-live) and the size bound (least recently used
entries go first); its documentation says it is not thread-safe, so every access here holds one lock.

Keys are server paths (``/data/projects/P1/subjects?columns=…``). A write invalidates what it changed
with :meth:`TTLCache.invalidate`, by path prefix on segment boundaries, so invalidating
``/data/projects/P1`` drops ``/data/projects/P1/subjects`` but not ``/data/projects/P10``.

A value loaded while an invalidation happened is returned to its caller but not stored, so a reader
racing a writer never puts stale data back into the cache.

Imports the standard library and cachetools only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import cachetools

V = TypeVar("V")

#: Characters that end a path segment: a key matches a prefix only at one of these.
BOUNDARIES = ("/", "?", "#")
_MISSING = object()


def key_has_prefix(key: Hashable, prefix: str) -> bool:
    """True if ``key`` (a path string, or a tuple starting with one) is ``prefix`` or lies below it."""
    path = key[0] if isinstance(key, tuple) and key else key
    if not isinstance(path, str):
        return False
    if path == prefix or prefix.endswith(BOUNDARIES) and path.startswith(prefix):
        return True
    return path.startswith(prefix) and path[len(prefix)] in BOUNDARIES


def key_is_path(key: Hashable, path: str) -> bool:
    """True if ``key`` (a path string, or a tuple starting with one) is exactly ``path``."""
    return (key[0] if isinstance(key, tuple) and key else key) == path


class TTLCache:
    """Bounded (``maxsize`` entries), expiring (``ttl`` seconds) and thread-safe (one lock).

    ``ttl <= 0`` or ``maxsize <= 0`` turns caching off: nothing is stored.
    """

    def __init__(self, maxsize: int, ttl: float, *, timer: Callable[[], float] = time.monotonic) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._enabled = maxsize > 0 and ttl > 0
        self._data: cachetools.TTLCache = cachetools.TTLCache(max(maxsize, 1), max(ttl, 1e-9), timer=timer)
        self._lock = threading.Lock()
        self._generation = 0

    def __repr__(self) -> str:
        return f"TTLCache(maxsize={self.maxsize}, ttl={self.ttl}, entries={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            self._data.expire()
            return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The live value for ``key``, or ``default`` if absent or expired."""
        with self._lock:
            return self._data.get(key, default)

    def set(self, key: Hashable, value: Any) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._data[key] = value

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._generation += 1
            self._data.pop(key, None)

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        """The cached value, or ``load()`` stored and returned. ``load`` runs outside the lock."""
        with self._lock:
            value = self._data.get(key, _MISSING)
            generation = self._generation
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        value = load()
        if self._enabled:
            with self._lock:
                if generation == self._generation:
                    self._data[key] = value
        return value

    def invalidate(self, prefix: str, *, exact: bool = False) -> int:
        """Drop every entry at or below the path ``prefix`` (only at it, with ``exact``); returns the count.

        Keys are paths or tuples whose first element is a path (``(path, query)``).
        """
        with self._lock:
            self._generation += 1
            match = key_is_path if exact else key_has_prefix
            doomed = [key for key in list(self._data.keys()) if match(key, prefix)]
            for key in doomed:
                self._data.pop(key, None)
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._data.clear()


__all__ = ["TTLCache", "key_has_prefix", "key_is_path"]
