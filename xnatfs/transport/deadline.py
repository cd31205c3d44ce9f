"""An overall deadline per request: a server that trickles its answer is cut off, not waited for.

Socket timeouts bound each wait for the next bytes; a server that sends one byte every 2 s never trips a
5 s timeout, so a single listing could take hours (issue 18: ``ls`` lived 300 s with ``--timeout 5``).
Here every request without a body (and every read of a streamed body) runs under a :func:`deadline`,
counted from the moment its connection is made (connecting is bounded by the connect timeout):
the connections it uses register their sockets with one watchdog thread, which shuts a socket down
(``shutdown(SHUT_RDWR)``, from outside) once its deadline passes, so the blocked ``recv`` returns at
once; the caller then sees :class:`~xnatfs.errors.DeadlineExceeded` (ETIMEDOUT), never the truncated
answer. The connection is not reused (a shut-down socket is dropped by the pool).

How the sockets are found: :class:`DeadlineAdapter` gives urllib3 connection classes that, when they
connect or send a request, attach their socket to the deadline of the calling thread (a thread-local).

Imports the standard library, urllib3 and requests (this is :mod:`xnatfs.transport`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from xnatfs.callers import POLL, asks, current_check
from xnatfs.errors import DeadlineExceeded
from xnatfs.redact import redact_url

log = logging.getLogger(__name__)

_current = threading.local()


class Guard:
    """The deadline of one request (or one read): the sockets it uses and whether it expired."""

    __slots__ = ("seconds", "when", "sockets", "expired", "abandoned", "gone", "_done")

    def __init__(self, seconds: float, sockets: tuple[socket.socket, ...] = ()) -> None:
        self.seconds = seconds
        #: the calling thread's "has whoever asked gone away?" (xnatfs.callers), asked by the watchdog
        self.gone: Callable[[], bool] | None = current_check()
        #: cut because whoever asked went away (not because the deadline passed)
        self.abandoned = False
        #: when the deadline passes: counted from the first connected socket (connecting, and retrying a
        #: refused connection, are bounded by the connect timeout and the retry policy instead)
        self.when: float | None = None
        self.sockets: list[socket.socket] = list(sockets)
        self.expired = False
        self._done = False
        if self.sockets:
            self._start()

    def _start(self) -> None:
        self.when = time.monotonic() + self.seconds
        _WATCHDOG.add(self)

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None or any(s is sock for s in self.sockets):
            return
        self.sockets.append(sock)
        if self.when is None:
            self._start()
        if self.expired:  # attached after the deadline passed: cut at once
            _shut(sock)

    def _expire(self) -> None:
        if self._done:
            return
        self.expired = True
        for sock in list(self.sockets):
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        # the plain socket's shutdown: SSLSocket.shutdown would drop its SSL object under a reading thread
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread for all deadlines of the process: a heap ordered by time, woken on each new one; while
    requests with a :func:`~xnatfs.callers.abandon_when` check are pending it also wakes every
    :data:`~xnatfs.callers.POLL` seconds to ask them."""

    #: finished deadlines are dropped when they come first in the heap; past this many entries the
    #: thread is woken to drop them sooner
    CLEAN_AT = 1024

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Guard]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        #: whether the thread is waking every POLL seconds to ask the pending deadlines' checks
        self._polling = False

    def add(self, guard: Guard) -> None:
        """Add a deadline; the thread is woken only if it must wake sooner than it planned: a stream
        read in 2,000 chunks used to wake it 2,000 times (a thread switch each, under the GIL)."""
        with self._cond:
            when = guard.when or time.monotonic()
            sooner = not self._heap or when < self._heap[0][0]
            wake = sooner or len(self._heap) >= self.CLEAN_AT or (guard.gone is not None and not self._polling)
            heapq.heappush(self._heap, (when, next(self._counter), guard))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="xnatfs-deadlines", daemon=True)
                self._thread.start()
            if wake:
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2]._done:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._polling = False
                    self._cond.wait(60.0)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                watched = [g for _, _, g in self._heap if g.gone is not None and not g._done and not g.expired]
                for guard in watched:
                    if asks(guard.gone):
                        guard.abandoned = True
                        guard._expire()
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._polling = bool(watched)
                    self._cond.wait(min(wait, POLL) if watched else wait)
                    continue
                _, _, guard = heapq.heappop(self._heap)
                guard._expire()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def deadline(seconds: float | None, sockets: tuple[socket.socket, ...] = ()) -> Iterator[Guard | None]:
    """Run the block under a deadline of ``seconds`` (None: no deadline); connections used inside attach
    their sockets, ``sockets`` are attached from the start (a stream's, for one read)."""
    if seconds is None or seconds <= 0:
        yield None
        return
    guard = Guard(seconds, sockets)
    outer = getattr(_current, "guard", None)
    _current.guard = guard
    try:
        yield guard
    finally:
        guard._done = True
        _current.guard = outer


def raise_if_cut(guard: Guard | None, method: str, url: str, *, reading: bool = False) -> None:
    """:class:`~xnatfs.errors.DeadlineExceeded` if ``guard`` cut the connection of ``method url`` (or, with
    ``reading``, of one read of its body), because the deadline passed or whoever asked went away.
    Never a truncated answer: whatever arrived before the cut is not used."""
    if guard is None or not guard.expired:
        return
    request = f"{method} {redact_url(url)}"
    if guard.abandoned:
        what = f"A read of {request}" if reading else request
        raise DeadlineExceeded(f"{what} was cut off: the program that asked for it went away (killed)") from None
    late = (f"A read of {request} took more than {guard.seconds:g} s" if reading
            else f"No complete answer to {request} within {guard.seconds:g} s")
    raise DeadlineExceeded(f"{late} (the server sends too slowly); the connection was closed") from None


def _attach(sock: Any) -> None:
    guard = getattr(_current, "guard", None)
    if guard is not None and isinstance(sock, socket.socket):
        guard.attach(sock)


class _AttachesSocket:
    """Mixed into urllib3's connection classes: the socket joins the calling thread's deadline when it
    connects and at each request (a kept-alive connection serves several requests)."""

    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _attach(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _DeadlineHTTPConnection(_AttachesSocket, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_AttachesSocket, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections attach their sockets to the calling thread's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


__all__ = ["DeadlineAdapter", "Guard", "deadline", "raise_if_cut"]
