"""Whether the server can be reached: after a request failed in transport, fail the next ones at once for a
moment instead of letting each wait again.

When the server is down, every request costs its connection retries (about a second); when it hangs,
every request costs the whole ``--timeout``. A tool that walks the tree (``ls -R``, a file manager
opening a folder) makes one request per directory, so it would wait that long for each of them. After a
:class:`~xnatfs.errors.TransportError` (refused, reset, TLS, or a timeout: retries are already spent by
then), :class:`Reachability` answers further requests for ``hold`` seconds with
:class:`ServerUnreachable` (the errno of the failure, EIO or ETIMEDOUT; the message says when the
server failed and how); then requests are sent again, and the first success clears it. One warning is
logged when the server becomes unreachable and one when it answers again. A server error (an HTTP
status) says the server is there and does not count.

Thread-safe. Imports the standard library and :mod:`xnatfs.errors` only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from xnatfs.errors import TransportError, XNATError

log = logging.getLogger(__name__)

T = TypeVar("T")
#: seconds requests fail at once after a transport failure
HOLD = 2.0


class ServerUnreachable(XNATError):
    """A request not sent: the server failed in transport moments ago (see the module docstring)."""

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


class Reachability:
    """The last transport failure and how long to hold off (see the module docstring)."""

    def __init__(self, hold: float = HOLD, *, timer: Callable[[], float] = time.monotonic) -> None:
        self.hold = hold
        self._timer = timer
        self._lock = threading.Lock()
        self._failure: tuple[float, TransportError] | None = None

    def call(self, request: Callable[[], T]) -> T:
        """``request()``, unless the server failed in transport less than ``hold`` seconds ago."""
        with self._lock:
            failure = self._failure
        if failure is not None:
            age = self._timer() - failure[0]
            if age < self.hold:
                raise ServerUnreachable(f"Not sent: the server failed {age:.1f} s ago ({failure[1]}); trying again in "
                                        f"{self.hold - age:.1f} s", failure[1].errno)
        try:
            result = request()
        except TransportError as exc:
            with self._lock:
                if self._failure is None:
                    log.warning("The server cannot be reached; requests fail at once for %.0f s at a time until it "
                                "answers again", self.hold)
                self._failure = (self._timer(), exc)
            raise
        if failure is not None:
            with self._lock:
                if self._failure is failure:
                    self._failure = None
                    log.warning("The server answers again")
        return result

    @property
    def down(self) -> bool:
        with self._lock:
            return self._failure is not None


__all__ = ["Reachability", "ServerUnreachable", "HOLD"]
