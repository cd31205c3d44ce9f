"""Transport behaviour under faults that the mount relies on: a refused connection is a transport failure
(EIO), not a timeout (urllib3 2 derives NewConnectionError from ConnectTimeoutError, and requests reports
it as ConnectTimeout); a host that drops packets times out once, within the connect timeout, without
retries; a busy server (503) can be given more retries than an absent one, with capped sleeps."""

from __future__ import annotations

import socket
import time

import pytest
from urllib3.exceptions import MaxRetryError, NewConnectionError

from xnatfs.errors import RequestTimeout, TransportError
from xnatfs.settings import RetryPolicy, Settings, Timeouts
from xnatfs.transport.http import make_retry
from xnatfs.transport.session import XNATSession

pytestmark = pytest.mark.unit


def test_a_refused_connection_is_a_transport_error_not_a_timeout() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = XNATSession(f"http://127.0.0.1:{port}", settings=Settings(timeouts=Timeouts(connect=5, read=5)))
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        session.get("/data/projects")
    assert not isinstance(caught.value, RequestTimeout)
    assert "connection refused (is the server running" in str(caught.value)
    assert "Max retries" not in str(caught.value) and "HTTPConnection" not in str(caught.value)
    assert time.monotonic() - started < 5
    session.close()


def test_a_host_that_drops_connections_times_out_once_within_the_connect_timeout() -> None:
    """A listening socket whose accept queue is full: the kernel drops further SYNs, as a firewall would."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = [socket.create_connection(("127.0.0.1", port), timeout=2)]  # backlog 0 holds one
        try:
            session = XNATSession(f"http://127.0.0.1:{port}", settings=Settings(timeouts=Timeouts(connect=0.5, read=5)))
            started = time.monotonic()
            with pytest.raises(RequestTimeout):
                session.get("/data/projects")
            elapsed = time.monotonic() - started
            session.close()
        finally:
            for connection in queued:
                connection.close()
    assert 0.4 < elapsed < 1.2  # one connect timeout: not four, not with backoff sleeps


def test_status_retries_are_counted_apart_from_connection_retries_with_capped_sleeps() -> None:
    policy = RetryPolicy(total=3, backoff_factor=0.2, status_retries=8, backoff_max=0.5)
    retry = make_retry(policy)
    sleeps = []
    for _ in range(8):  # eight 503s in a row are retried
        assert retry.is_retry("GET", 503)
        retry = retry.increment(method="GET", url="/x", response=_Answer(503))
        sleeps.append(retry.get_backoff_time())
    with pytest.raises(MaxRetryError):
        retry.increment(method="GET", url="/x", response=_Answer(503))
    assert max(sleeps) == 0.5 and sum(sleeps) <= 3.5
    refused = NewConnectionError(None, "refused")  # type: ignore[arg-type]
    retry = make_retry(policy)
    for _ in range(3):
        retry = retry.increment(method="GET", url="/x", error=refused)
    with pytest.raises(MaxRetryError):  # an absent server: three retries only
        retry.increment(method="GET", url="/x", error=refused)
    default = make_retry(RetryPolicy())
    assert (default.total, default.connect, default.status) == (3, 3, 3)


class _Answer:
    """Enough of a urllib3 response for Retry.increment."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.headers: dict[str, str] = {}

    def get_redirect_location(self) -> bool:
        return False

    def close(self) -> None:
        pass
