"""A refused connection is a transport failure (EIO), not a timeout: urllib3 2 derives NewConnectionError
from ConnectTimeoutError, and requests reports it as ConnectTimeout."""

from __future__ import annotations

import socket
import time

import pytest

from xnatfs.errors import RequestTimeout, TransportError
from xnatfs.settings import Settings, Timeouts
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
    assert "Request failed" in str(caught.value) and "refused" in str(caught.value)
    assert time.monotonic() - started < 5
    session.close()
