"""Nothing of requests or urllib3 leaves the transport: every way a body can fail while it is read (a
stalled error body, a stalled or cut file body, read whole or streamed) ends in an :mod:`xnatfs.errors`
class, against a real HTTP server on 127.0.0.1 that misbehaves after its headers."""

from __future__ import annotations

import socket
import time
from contextlib import closing
from collections.abc import Callable, Iterator

import pytest

from hostile import Exchange, HostileServer
from xnatfs.errors import RequestTimeout, ServerError, TransportError, XNATError
from xnatfs.settings import RetryPolicy, Settings, Timeouts
from xnatfs.transport.session import XNATSession

pytestmark = pytest.mark.integration

READ_TIMEOUT = 0.5
AT_ONCE = 0.1


def stalled(status: int, sent: bytes = b"", length: int = 100_000) -> Callable[[Exchange], None]:
    """Headers announcing ``length`` bytes, then ``sent``, then nothing (until the server stops)."""
    def route(ex: Exchange) -> None:
        ex.head(status, {"Content-Length": str(length), "Content-Type": "text/html"})
        ex.write(sent)
        ex.stall(30)
    return route


def cut(status: int, sent: bytes = b"x" * 1000, length: int = 100_000) -> Callable[[Exchange], None]:
    """Headers announcing ``length`` bytes, then ``sent``, then the connection is closed."""
    def route(ex: Exchange) -> None:
        ex.head(status, {"Content-Length": str(length), "Content-Type": "application/octet-stream"})
        ex.write(sent)
        ex.handler.close_connection = True
        ex.handler.connection.shutdown(socket.SHUT_RDWR)  # the FIN goes out now
    return route


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


def session_for(server: HostileServer) -> XNATSession:
    # No hold after a transport failure: each call here must reach the server.
    settings = Settings(timeouts=Timeouts(connect=2, read=READ_TIMEOUT), retry=RetryPolicy(total=0),
                        unreachable_hold=0)
    return XNATSession(server.url, settings=settings)


def raises_within(kind: type[XNATError], call: Callable[[], object], seconds: float = 3 * READ_TIMEOUT) -> XNATError:
    """The error ``call`` raises: a ``kind`` (a cut body is a TransportError that is no timeout), in time."""
    started = time.monotonic()
    with pytest.raises(XNATError) as caught:
        call()
    assert time.monotonic() - started < seconds
    assert isinstance(caught.value, kind), repr(caught.value)
    if kind is TransportError:
        assert not isinstance(caught.value, RequestTimeout), repr(caught.value)
    return caught.value


def test_a_500_whose_body_stalls_is_a_server_error_from_open_stream(server: HostileServer) -> None:
    """The leak of issue 11: reading the excerpt of a streamed error answer raised urllib3's ReadTimeoutError."""
    server.route("GET", "/data/file", stalled(500, b"<html>Internal error in the pipeline"))
    with closing(session_for(server)) as session:
        error = raises_within(ServerError, lambda: session.open_stream("GET", "/data/file"))
    assert error.status == 500 and "/data/file" in str(error)
    assert "Internal error in the pipeline" in error.excerpt  # what came before the stall is kept


def test_a_500_whose_body_stalls_is_a_server_error_from_get(server: HostileServer) -> None:
    server.route("GET", "/data/projects", stalled(500, b"partial"))
    with closing(session_for(server)) as session:
        error = raises_within(ServerError, lambda: session.get("/data/projects"))
    assert error.status == 500


def test_a_500_whose_body_is_cut_is_a_server_error(server: HostileServer) -> None:
    server.route("GET", "/data/file", cut(500, b"<html>broken</html>"))
    with closing(session_for(server)) as session:
        assert raises_within(ServerError, lambda: session.open_stream("GET", "/data/file")).status == 500
        assert raises_within(ServerError, lambda: session.get("/data/file")).status == 500


def test_a_document_whose_body_stalls_times_out(server: HostileServer) -> None:
    server.route("GET", "/data/projects", stalled(200, b'{"ResultSet": '))
    with closing(session_for(server)) as session:
        raises_within(RequestTimeout, lambda: session.get_json("/data/projects"))


def test_a_document_whose_body_is_cut_is_a_transport_error(server: HostileServer) -> None:
    server.route("GET", "/data/projects", cut(200, b'{"ResultSet": '))
    with closing(session_for(server)) as session:
        raises_within(TransportError, lambda: session.get_json("/data/projects"))


@pytest.mark.parametrize("how", ["read", "read_all", "readinto", "iter_chunks"])
def test_a_streamed_body_that_stalls_times_out_in_every_reader(server: HostileServer, how: str) -> None:
    server.route("GET", "/data/file", stalled(200, b"x" * 1000, length=10_000))
    with closing(session_for(server)) as session, session.open_stream("GET", "/data/file") as stream:
        raises_within(RequestTimeout, lambda: consume(stream, how))
        for again in ("read", "readinto", "iter_chunks"):  # the broken body is never taken for its end
            raises_within(RequestTimeout, lambda: consume(stream, again), seconds=AT_ONCE)
        stream.close()  # closing a stream whose read failed raises nothing
        stream.close()


@pytest.mark.parametrize("how", ["read", "read_all", "readinto", "iter_chunks"])
def test_a_streamed_body_that_is_cut_is_a_transport_error_in_every_reader(server: HostileServer, how: str) -> None:
    server.route("GET", "/data/file", cut(200, b"x" * 1000, length=10_000))
    with closing(session_for(server)) as session, session.open_stream("GET", "/data/file") as stream:
        raises_within(TransportError, lambda: consume(stream, how))


def test_reading_a_closed_stream_is_our_error_or_empty(server: HostileServer) -> None:
    server.route("GET", "/data/file", lambda ex: ex.reply(200, b"y" * 5000))
    with closing(session_for(server)) as session:
        stream = session.open_stream("GET", "/data/file")
        assert stream.read(10) == b"y" * 10
        stream.close()
        try:
            rest = stream.read(10)
        except XNATError:
            return
        assert rest == b""


def consume(stream, how: str) -> None:  # type: ignore[no-untyped-def]
    if how == "read":
        while stream.read(4096):
            pass
    elif how == "read_all":
        stream.read()
    elif how == "readinto":
        buffer = bytearray(4096)
        while stream.readinto(buffer):
            pass
    else:
        for _chunk in stream.iter_chunks(4096):
            pass


def test_a_gzip_body_that_breaks_is_a_transport_error(server: HostileServer) -> None:
    server.route("GET", "/data/file", lambda ex: (
        ex.head(200, {"Content-Length": "64", "Content-Encoding": "gzip"}), ex.write(b"\x1f\x8b\x08\x00" + b"junk" * 15)))
    with closing(session_for(server)) as session, session.open_stream("GET", "/data/file") as stream:
        raises_within(TransportError, lambda: stream.read())
    with closing(session_for(server)) as session:
        raises_within(TransportError, lambda: session.get("/data/file"))


def test_responses_are_ours_with_a_redacted_url_and_masked_cookies(server: HostileServer) -> None:
    server.route("GET", "/data/thing", lambda ex: ex.reply(
        200, '{"a": "\u00e9"}', {"Content-Type": "application/json; charset=utf-8",
                                  "Set-Cookie": "JSESSIONID=0123456789ABCDEF; Path=/"}))
    with closing(session_for(server)) as session:
        resp = session.get("/data/thing", params={"alias": "secret-alias", "x": "1"})
        stream = session.open_stream("GET", "/data/thing", params={"token": "secret-token"})
    assert type(resp).__module__ == "xnatfs.transport.responses"
    assert resp.status_code == 200 and resp.ok and resp.reason == "OK"
    assert resp.json() == {"a": "\u00e9"} and resp.text == '{"a": "\u00e9"}'
    assert resp.headers["content-type"] == resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "secret" not in resp.url and "x=1" in resp.url and "secret" not in repr(resp)
    assert "0123456789ABCDEF" not in repr(resp.headers) and resp.headers["set-cookie"] == "***"
    assert "secret" not in stream.url and "0123456789ABCDEF" not in repr(stream.headers)
    assert stream.status_code == 200 and stream.read() == '{"a": "\u00e9"}'.encode()
    stream.close()
    for public in (resp, stream, resp.headers):
        assert not any(part.startswith(("requests", "urllib3")) for part in type(public).__module__.split("."))
