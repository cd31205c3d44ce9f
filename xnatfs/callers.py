"""Whoever asked: a thread's check of whether the program its work is for has gone away.

The daemon answers each FUSE call on a worker thread; once it has read the kernel's request, the
kernel keeps the calling process waiting for the answer even after SIGKILL. The daemon therefore
runs each call under :func:`abandon_when` with a check of that process, and the layers that wait
(the transport's watchdog for requests on the wire, the metadata cache for a request another thread
sent) give up as soon as the check says the caller is gone, so the killed program ends at once.

A leaf: imports the standard library only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: how often waits ask their check (seconds)
POLL = 0.2

_current = threading.local()


class abandon_when:  # noqa: N801 - used as a function: ``with abandon_when(check):``
    """Work done by this thread inside the block is for a caller that ``gone()`` says has gone away.

    (A class, not a generator context manager: the daemon enters one for nearly every FUSE call.)"""

    __slots__ = ("_gone", "_outer")

    def __init__(self, gone: Callable[[], bool]) -> None:
        self._gone = gone
        self._outer: Callable[[], bool] | None = None

    def __enter__(self) -> None:
        self._outer = getattr(_current, "gone", None)
        _current.gone = self._gone

    def __exit__(self, *exc: object) -> None:
        _current.gone = self._outer


def current_check() -> Callable[[], bool] | None:
    """The calling thread's check (None outside :func:`abandon_when`)."""
    return getattr(_current, "gone", None)


def asks(gone: Callable[[], bool] | None) -> bool:
    """Whether ``gone`` says the caller went away (a failing check says no)."""
    if gone is None:
        return False
    try:
        return bool(gone())
    except Exception:  # noqa: BLE001 - a broken check must never break the wait that asks it
        return False


__all__ = ["POLL", "abandon_when", "asks", "current_check"]
