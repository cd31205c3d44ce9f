"""The session holds requests off for a moment after a transport failure, then tries again; HTTP errors
do not count (xnatfs.transport.reachability, used by every XNATSession verb)."""

from __future__ import annotations

import errno
import logging

import pytest

from xnatfs.errors import (
    NotFound,
    RequestTimeout,
    ServerError,
    ServerNotAnswering,
    ServerUnreachable,
    TransportError,
)
from xnatfs.settings import DEFAULT_SETTINGS
from xnatfs.transport.reachability import Reachability

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def failing(exc: Exception):  # type: ignore[no-untyped-def]
    def request() -> None:
        raise exc
    return request


def test_after_a_transport_failure_requests_fail_at_once_until_the_hold_ends(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    reach = Reachability(hold=2.0, timer=clock)
    sent: list[int] = []
    with caplog.at_level(logging.WARNING), pytest.raises(RequestTimeout):
        reach.call(failing(RequestTimeout("no answer")))
    clock.now += 1.5
    with pytest.raises(ServerNotAnswering) as caught:
        reach.call(lambda: sent.append(1))
    assert sent == [] and caught.value.errno == errno.ETIMEDOUT
    assert isinstance(caught.value, ServerUnreachable) and isinstance(caught.value, TransportError)
    assert "no answer" in str(caught.value) and "1.5 s ago" in str(caught.value) and reach.down
    clock.now += 0.6  # the hold is over: the next request is sent, and its success clears the state
    assert reach.call(lambda: sent.append(2) or "ok") == "ok"
    assert sent == [2] and not reach.down
    assert [r.getMessage() for r in caplog.records] == [
        "The server cannot be reached; requests fail at once for 2 s at a time until it answers again",
        "The server answers again"]


def test_a_server_error_is_an_answer_and_does_not_hold_requests() -> None:
    reach = Reachability(hold=2.0, timer=Clock())
    with pytest.raises(ServerError):
        reach.call(failing(ServerError("HTTP 503")))
    assert not reach.down and reach.call(lambda: 1) == 1
    with pytest.raises(TransportError):
        reach.call(failing(TransportError("refused")))
    with pytest.raises(ServerUnreachable) as caught:
        reach.call(lambda: 1)
    assert type(caught.value) is ServerUnreachable and caught.value.errno == errno.EIO


def test_an_http_error_after_the_hold_ends_it() -> None:
    clock = Clock()
    reach = Reachability(hold=2.0, timer=clock)
    with pytest.raises(TransportError):
        reach.call(failing(TransportError("reset")))
    clock.now += 2.5
    with pytest.raises(NotFound):  # the server answered, if only with a 404
        reach.call(failing(NotFound("no such project", status=404)))
    assert not reach.down and reach.call(lambda: 1) == 1


def test_a_request_held_off_does_not_extend_the_hold() -> None:
    """A nested or repeated ServerUnreachable is not a new failure: the hold still ends on time."""
    clock = Clock()
    reach = Reachability(hold=2.0, timer=clock)
    with pytest.raises(TransportError):
        reach.call(failing(TransportError("refused")))
    clock.now += 1.9
    inner = Reachability(hold=2.0, timer=clock)  # e.g. a caller's own wrapper around a held session
    with pytest.raises(ServerUnreachable):
        inner.call(lambda: reach.call(lambda: 1))
    assert not inner.down
    clock.now += 0.2
    assert reach.call(lambda: 2) == 2


def test_a_hold_of_zero_turns_it_off() -> None:
    reach = Reachability(hold=0, timer=Clock())
    calls: list[int] = []
    for _ in range(3):
        with pytest.raises(TransportError):
            reach.call(lambda: calls.append(1) or failing(TransportError("refused"))())
    assert calls == [1, 1, 1] and not reach.down


def test_the_library_default_is_the_mounts() -> None:
    assert DEFAULT_SETTINGS.unreachable_hold == 2.0
