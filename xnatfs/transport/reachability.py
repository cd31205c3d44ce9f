"""Whether the server can be reached: after a request failed in transport, fail the next ones at once for a
moment instead of letting each wait again.

When the server is down, every request costs its connection retries (about a second); when it hangs,
every request costs the whole read timeout. A tool that walks the tree (``ls -R`` on the mount, a file
manager opening a folder, a script looping over subjects) makes one request per directory or object,
so it would wait that long for each of them. After a :class:`~xnatfs.errors.TransportError` (refused,
reset, TLS, or a timeout: retries are already spent by then), :class:`Reachability` answers further
requests for ``hold`` seconds with :class:`~xnatfs.errors.ServerUnreachable`, or
:class:`~xnatfs.errors.ServerNotAnswering` when the failure was a timeout (so the errno, EIO or
ETIMEDOUT, is the failure's; the message says when the server failed and how). Then requests are sent
again, and the first answer clears it. One warning is logged when the server becomes unreachable and
one when it answers again. An HTTP error status (a :class:`~xnatfs.errors.ResponseError`) says the
server is there: it does not start a hold, and it ends one.

Every :class:`~xnatfs.transport.session.XNATSession` has one (``Settings.unreachable_hold``; 0 turns
it off), so the library, the mount, the CLI and the write paths all fail fast alike.

Thread-safe. Imports the standard library and :mod:`xnatfs.errors` only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from xnatfs.errors import RequestTimeout, ResponseError, ServerNotAnswering, ServerUnreachable, TransportError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Reachability:
    """The last transport failure and how long to hold requests off (see the module docstring)."""

    def __init__(self, hold: float, *, timer: Callable[[], float] = time.monotonic) -> None:
        self.hold = hold
        self._timer = timer
        self._lock = threading.Lock()
        self._failure: tuple[float, TransportError] | None = None

    def check(self) -> None:
        """Raise :class:`ServerUnreachable` if the server failed in transport less than ``hold`` s ago."""
        with self._lock:
            failure = self._failure
        if failure is None or self.hold <= 0:
            return
        age = self._timer() - failure[0]
        if age < self.hold:
            kind = ServerNotAnswering if isinstance(failure[1], RequestTimeout) else ServerUnreachable
            raise kind(f"Not sent: the server failed {age:.1f} s ago ({failure[1]}); trying again in "
                       f"{self.hold - age:.1f} s")

    def failed(self, exc: TransportError) -> None:
        """Record a transport failure: requests are held off for ``hold`` seconds from now."""
        if self.hold <= 0 or isinstance(exc, ServerUnreachable):
            return  # a request that was not sent says nothing new about the server
        with self._lock:
            if self._failure is None:
                log.warning("The server cannot be reached; requests fail at once for %.0f s at a time until it "
                            "answers again", self.hold)
            self._failure = (self._timer(), exc)

    def answered(self) -> None:
        """The server answered (any HTTP status): clear a recorded failure."""
        if self._failure is None:  # the common case, without the lock
            return
        with self._lock:
            if self._failure is not None:
                self._failure = None
                log.warning("The server answers again")

    def call(self, request: Callable[[], T]) -> T:
        """``request()``, unless the server failed in transport less than ``hold`` seconds ago."""
        self.check()
        try:
            result = request()
        except ResponseError:
            self.answered()
            raise
        except TransportError as exc:
            self.failed(exc)
            raise
        self.answered()
        return result

    @property
    def down(self) -> bool:
        """True while a transport failure is recorded (held off, or waiting for the next answer)."""
        with self._lock:
            return self._failure is not None


__all__ = ["Reachability"]
