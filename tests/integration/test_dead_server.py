"""Fail fast on a dead server, at the session, for every caller: after one request failed in transport,
the library's calls (listings, the prearchive, raw verbs, streams) fail at once with ServerUnreachable
for ``Settings.unreachable_hold`` seconds instead of each waiting its retries or its timeout again;
then they are sent again. Against the emulator, killed or hung for real."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator

import pytest

import xnatfs
from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import (
    RequestTimeout,
    ServerNotAnswering,
    ServerUnreachable,
    TransportError,
    XNATError,
)
from xnatfs.model.connect import Connection
from xnatfs.settings import Settings, Timeouts

pytestmark = pytest.mark.integration

HOLD = 1.0
#: What "at once" means: no connection attempt, no timeout, no retry sleep.
AT_ONCE = 0.1


@pytest.fixture
def connection(fresh_emulator: EmulatorServer) -> Iterator[Connection]:
    settings = Settings(timeouts=Timeouts(connect=2, read=0.5), unreachable_hold=HOLD)
    with xnatfs.connect(fresh_emulator.url, "admin", "admin", settings=settings) as connection:
        assert connection.projects.keys() == [] and connection.prearchive.sessions() == []
        yield connection


def timed(kind: type[XNATError], call: Callable[[], object]) -> tuple[XNATError, float]:
    """The error ``call`` raises (it must be a ``kind``) and how long that took."""
    started = time.monotonic()
    with pytest.raises(XNATError) as caught:
        call()
    assert isinstance(caught.value, kind), repr(caught.value)
    return caught.value, time.monotonic() - started


def test_after_the_server_is_killed_calls_fail_at_once_for_the_hold_then_try_again(
        connection: Connection, fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.stop(close_store=False)  # connections are refused from now on
    first, _ = timed(TransportError, lambda: connection.projects.refresh().keys())
    assert not isinstance(first, ServerUnreachable)  # this one was sent, and refused
    calls: list[Callable[[], object]] = [
        lambda: connection.prearchive.sessions(),         # the prearchive listing
        lambda: connection.prearchive.sessions("P1"),
        lambda: connection.get("/data/projects"),           # raw verbs
        lambda: connection.put("/data/projects/NEW"),
        lambda: connection.session.open_stream("GET", "/data/projects/P/files/f"),  # a file read
        lambda: connection.projects.refresh().keys(),
    ]
    for call in calls:
        held, elapsed = timed(ServerUnreachable, call)
        assert elapsed < AT_ONCE, f"{elapsed:.2f} s"
        assert held.errno == errno.EIO and "Not sent" in str(held) and "refused" in str(held).lower()
    time.sleep(HOLD + 0.1)
    again, _ = timed(TransportError, lambda: connection.prearchive.sessions())  # sent again: still refused
    assert not isinstance(again, ServerUnreachable)
    timed(ServerUnreachable, lambda: connection.get("/data/projects"))  # and held again
    fresh_emulator.start()  # back on the same port
    time.sleep(HOLD + 0.1)
    assert connection.prearchive.sessions() == [] and not connection.session.reachability.down
    assert connection.projects.refresh().keys() == []


def test_after_a_timeout_calls_fail_at_once_with_etimedout(connection: Connection,
                                                           fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.set_faults(latency_ms=3000)  # the server hangs on every request
    try:
        _, elapsed = timed(RequestTimeout, lambda: connection.prearchive.sessions())
        assert elapsed < 2.0  # one read timeout (0.5 s), never retried
        for call in (lambda: connection.prearchive.sessions(), lambda: connection.projects.refresh().keys(),
                     lambda: connection.get_json("/data/projects")):
            held, elapsed = timed(ServerNotAnswering, call)
            assert elapsed < AT_ONCE and held.errno == errno.ETIMEDOUT
    finally:
        fresh_emulator.set_faults(latency_ms=0)
    time.sleep(HOLD + 0.1)
    assert connection.prearchive.sessions() == []


def test_a_walk_over_a_dead_server_costs_one_failure_not_one_per_call(connection: Connection,
                                                                      fresh_emulator: EmulatorServer) -> None:
    fresh_emulator.stop(close_store=False)
    started = time.monotonic()
    failures = []
    for project in [f"P{i}" for i in range(50)]:
        try:
            connection.prearchive.sessions(project)
        except TransportError as exc:
            failures.append(exc)
    elapsed = time.monotonic() - started
    assert len(failures) == 50 and sum(isinstance(f, ServerUnreachable) for f in failures) == 49
    assert elapsed < 5.0, f"{elapsed:.1f} s for 50 listings on a dead server"


def test_a_hold_of_zero_sends_every_call(fresh_emulator: EmulatorServer) -> None:
    settings = Settings(timeouts=Timeouts(connect=2, read=0.5), unreachable_hold=0)
    with xnatfs.connect(fresh_emulator.url, "admin", "admin", settings=settings) as connection:
        fresh_emulator.stop(close_store=False)
        for _ in range(2):
            failure, _ = timed(TransportError, lambda: connection.prearchive.sessions())
            assert not isinstance(failure, ServerUnreachable)
