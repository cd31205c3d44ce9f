"""The mount holds off for a moment after a transport failure, then tries again; HTTP errors do not count."""

from __future__ import annotations

import errno
import logging

import pytest

from xnatfs.errors import RequestTimeout, ServerError, TransportError
from xnatfs.vfs.reachability import Reachability, ServerUnreachable

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
    with pytest.raises(ServerUnreachable) as caught:
        reach.call(lambda: sent.append(1))
    assert sent == [] and caught.value.errno == errno.ETIMEDOUT
    assert "no answer" in str(caught.value) and reach.down
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
    assert caught.value.errno == errno.EIO
