"""Waits give up when whoever they are for went away (xnatfs.callers): the metadata cache's wait for a
load another thread runs, and the transport watchdog's cut of a request on the wire."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from xnatfs.cache.ttl import TTLCache
from xnatfs.callers import abandon_when, asks
from xnatfs.errors import CallerGone
from xnatfs.transport.deadline import deadline

pytestmark = pytest.mark.unit


def test_a_waiter_whose_caller_went_away_stops_waiting_for_another_threads_load() -> None:
    cache: TTLCache = TTLCache(10, 60)
    release, started = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(10)
        return "value"

    loader = threading.Thread(target=lambda: cache.get_or_load("k", slow))
    loader.start()
    assert started.wait(5)
    gone = threading.Event()
    threading.Timer(0.3, gone.set).start()
    begun = time.monotonic()
    with abandon_when(gone.is_set), pytest.raises(CallerGone) as info:
        cache.get_or_load("k", lambda: "never")
    assert time.monotonic() - begun < 2 and "went away" in str(info.value)
    release.set()
    loader.join(5)
    assert cache.get_or_load("k", lambda: "never") == "value"  # the load itself went on and was kept


def test_the_watchdog_cuts_a_request_whose_caller_went_away_before_its_deadline() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    gone = threading.Event()
    threading.Timer(0.3, gone.set).start()
    begun = time.monotonic()
    with abandon_when(gone.is_set), deadline(30.0, (client,)) as guard:
        assert client.recv(10) == b""  # the watchdog shut the socket down
    assert guard is not None and guard.abandoned and time.monotonic() - begun < 2
    client.close()
    server.close()


def test_a_broken_check_counts_as_still_there() -> None:
    assert asks(lambda: 1 / 0) is False  # type: ignore[arg-type, return-value]
    assert asks(None) is False


def test_a_deadline_sooner_than_those_waiting_is_kept_and_later_ones_wake_nobody() -> None:
    """The watchdog is woken only for a deadline sooner than the ones it waits for (a stream read in
    2,000 chunks used to wake it 2,000 times): a short deadline added after long ones still cuts on time,
    and a long one added after it does not delay it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    sockets = [socket.create_connection(server.getsockname()) for _ in range(3)]
    with deadline(30.0, (sockets[0],)), deadline(0.3, (sockets[1],)) as short, deadline(60.0, (sockets[2],)):
        begun = time.monotonic()
        with pytest.raises(OSError):
            sockets[1].settimeout(5)
            if not sockets[1].recv(1):  # shut down by the watchdog: end of stream
                raise OSError("cut")
        assert short is not None and short.expired and time.monotonic() - begun < 2
    for sock in sockets:
        sock.close()
    server.close()
