"""A thread-safe, bounded mapping whose entries expire: the metadata cache of a connection.

cachetools' ``TTLCache`` gives the expiry (time-to-live) and the size bound (least recently used
entries go first); its documentation says it is not thread-safe, so every access here holds one lock.

Keys are server paths (``/data/projects/P1/subjects?columns=…``). A write invalidates what it changed
with :meth:`TTLCache.invalidate`, by path prefix on segment boundaries, so invalidating
``/data/projects/P1`` drops ``/data/projects/P1/subjects`` but not ``/data/projects/P10``.

:meth:`TTLCache.get_or_load` is the one get-or-load of xnatfs (the library's documents and listings and
the mount's records all go through it): concurrent callers of one key share one load (the later ones
wait for it, bounded by ``wait_timeout``), and a value whose load began before an invalidation is
returned to its caller but never stored, and never handed to a caller that arrived after the
invalidation, so a reader racing a writer never puts stale data back into the cache.

Imports the standard library, cachetools and :mod:`xnatfs.errors`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import cachetools

from xnatfs.callers import POLL, asks, current_check
from xnatfs.errors import CallerGone, RequestTimeout

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

    def __init__(self, maxsize: int, ttl: float, *, timer: Callable[[], float] = time.monotonic,
                 wait_timeout: float = 120.0) -> None:
        """``wait_timeout`` bounds how long a caller waits for another thread's load of the same key
        (the loads themselves are bounded by their request timeouts)."""
        self.maxsize = maxsize
        self.wait_timeout = wait_timeout
        self.ttl = ttl
        self._enabled = maxsize > 0 and ttl > 0
        self._data: cachetools.TTLCache = cachetools.TTLCache(max(maxsize, 1), max(ttl, 1e-9), timer=timer)
        self._lock = threading.Lock()
        self._generation = 0
        #: key -> (generation the load began in, its future)
        self._inflight: dict[Hashable, tuple[int, Future]] = {}

    def __repr__(self) -> str:
        return f"TTLCache(maxsize={self.maxsize}, ttl={self.ttl}, entries={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            self._data.expire()
            return len(self._data)

    @property
    def generation(self) -> int:
        """A counter that grows at every invalidation (``pop``, ``invalidate``, ``clear``): what was
        derived from this cache's values under one generation is still current while it stays."""
        return self._generation

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

    def _wait_for(self, future: Future) -> Any:
        """The result of a load another thread runs: waited for at most ``wait_timeout``, and given up
        at once if whoever this thread works for went away (xnatfs.callers)."""
        check = current_check()
        end = time.monotonic() + self.wait_timeout
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise RequestTimeout(f"Waited {self.wait_timeout:.0f} s for a request another thread sent")
            try:
                return future.result(timeout=min(remaining, POLL) if check is not None else remaining)
            except FutureTimeout:
                if asks(check):
                    raise CallerGone("Stopped waiting for a request another thread sent: the program that "
                                     "asked went away (killed)") from None

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._generation += 1
            self._data.pop(key, None)

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        """The cached value, or ``load()`` stored and returned. ``load`` runs outside the lock.

        One load per key at a time: a caller that finds a load of ``key`` in flight, begun since the
        last invalidation, waits for its result (or its exception) instead of loading again.
        """
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[return-value]
            generation = self._generation
            running = self._inflight.get(key)
            owner = running is None or running[0] != generation
            if owner:
                future: Future = Future()
                mine = self._inflight[key] = (generation, future)
            else:
                future = running[1]  # type: ignore[index]
        if not owner:
            return self._wait_for(future)
        try:
            value = load()
        except BaseException as exc:
            with self._lock:
                if self._inflight.get(key) is mine:
                    del self._inflight[key]
            future.set_exception(exc)
            # exc -> traceback -> this frame -> future -> exc is a cycle that would keep everything the
            # failed load's frames hold (a refused 128 MiB body) until the cycle collector runs
            future = mine = None  # type: ignore[assignment]
            raise
        with self._lock:
            if self._inflight.get(key) is mine:
                del self._inflight[key]
            if self._enabled and generation == self._generation:
                self._data[key] = value
        future.set_result(value)
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
