"""A few threads that run fetches ahead of the user, the most urgent first.

Why: the tree warms two kinds of things. What a program walking a big collection will ask for next
(``find`` over 1,000 subjects visits their documents in order) is needed within moments; what a
fresh listing's children might need (each session's file listing, in case someone descends) is a
guess. In one first-come queue the guesses, queued first, delay the walk: ``find -maxdepth 3`` over
1,000 subjects waited for 1,000 session listings it never used. Here urgent work always goes before
guesses, and the guesses fill the gaps.

Work is dropped, not run, once the pool is closed; a failure is the function's own business (the
caller wraps it). Thread-safe.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any

#: priorities (lower runs first)
URGENT = 0
GUESS = 1


class WorkPool:
    """``workers`` daemon threads, started when work first comes, running queued calls by priority."""

    def __init__(self, workers: int, name: str) -> None:
        self._workers = workers
        self._name = name
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[..., Any] | None, tuple[Any, ...]]] = \
            queue.PriorityQueue()
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, priority: int, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue ``fn(*args)``; False if the pool is closed (nothing queued)."""
        with self._lock:
            if self._closed:
                return False
            if len(self._threads) < self._workers:
                thread = threading.Thread(target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._queue.put((priority, next(self._order), fn, args))
        return True

    def close(self) -> None:
        """Drop queued work; running calls finish on their own (bounded by their timeouts)."""
        with self._lock:
            self._closed = True
            threads = len(self._threads)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in range(threads):
            self._queue.put((-1, next(self._order), None, ()))  # wakes each thread to stop

    def _run(self) -> None:
        while True:
            _priority, _order, fn, args = self._queue.get()
            if fn is None or self._closed:
                if fn is None:
                    return
                continue
            fn(*args)


__all__ = ["WorkPool", "URGENT", "GUESS"]
