"""XNATSession over a scripted requests adapter (no sockets): login, re-login, errors, timeouts, streams."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.response import HTTPResponse

from xnatfs.errors import (
    AuthenticationError,
    ConfigError,
    Conflict,
    NotFound,
    PermissionDenied,
    RequestTimeout,
    ServerError,
    TransportError,
)
from xnatfs.settings import Settings, Timeouts
from xnatfs.transport.auth import Credentials
from xnatfs.transport.session import XNATSession

pytestmark = pytest.mark.unit

BASE = "http://xnat.test/xnat"
PASSWORD = "pa55-very-secret"
Reply = tuple[int, dict[str, str], "bytes | BrokenBody"]


class BrokenBody(io.RawIOBase):
    """A body that gives ``head`` and then fails as a socket would: ``TimeoutError`` (a stall) or a reset."""

    def __init__(self, head: bytes, failure: OSError) -> None:
        super().__init__()
        self._head = head
        self._failure = failure

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size], self._head = self._head[:size], self._head[size:]
            return size
        raise self._failure


class ScriptedServer(BaseAdapter):
    """A requests adapter that answers from a handler function and records every request."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], Reply | Exception]) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[requests.PreparedRequest] = []
        self.timeouts: list[object] = []
        self.bodies: list[bytes] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        self.timeouts.append(timeout)
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        self.bodies.append(body.encode() if isinstance(body, str) else (body or b""))
        answer = self.handler(request)
        if isinstance(answer, Exception):
            raise answer
        status, headers, content = answer
        body = io.BufferedReader(content) if isinstance(content, BrokenBody) else io.BytesIO(content)
        raw = HTTPResponse(body=body, headers=headers, status=status, preload_content=False)
        resp = requests.Response()
        resp.status_code = status
        resp.headers = CaseInsensitiveDict(headers)
        resp.raw = raw
        resp.url = request.url
        resp.request = request
        resp.reason = "scripted"
        return resp

    def close(self) -> None:
        pass


def path_of(request: requests.PreparedRequest) -> str:
    return urlsplit(request.url).path.removeprefix("/xnat")


def query_of(request: requests.PreparedRequest) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(request.url).query, keep_blank_values=True)


class FakeXNAT:
    """Session-tracking handler: POST /data/JSESSION issues tokens; data needs a live token."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self.issued = 0
        self.jsession_route = True

    def __call__(self, request: requests.PreparedRequest) -> Reply:
        path = path_of(request)
        if path == "/data/JSESSION" and request.method == "POST":
            if not self.jsession_route:
                return 404, {}, b"<html><h3>no route</h3></html>"
            expected = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                sent = base64.b64decode(request.headers.get("Authorization", "Basic ")[6:]).decode()
                return 401, {"WWW-Authenticate": 'Basic realm="XNAT"'}, f"<html><h3>bad {sent}</h3>".encode()
            return self._issue()
        if path == "/data/services/auth" and request.method == "PUT":
            form = dict(parse_qsl(request.body))
            if form != {"username": "admin", "password": PASSWORD}:
                return 401, {}, b"<html>no</html>"
            return self._issue()
        if path == "/data/JSESSION" and request.method == "DELETE":
            self.valid.discard(self._token(request))
            return 200, {}, b""
        if self._token(request) not in self.valid:
            return 401, {}, b"<html><h3>login</h3></html>"
        return self.data(request)

    def _issue(self) -> Reply:
        self.issued += 1
        token = f"TOKEN{self.issued:04d}"
        self.valid.add(token)
        return 200, {"Content-Type": "text/plain"}, token.encode()

    @staticmethod
    def _token(request: requests.PreparedRequest) -> str:
        cookie = request.headers.get("Cookie", "")
        return dict(p.strip().split("=", 1) for p in cookie.split(";") if "=" in p).get("JSESSIONID", "")

    def data(self, request: requests.PreparedRequest) -> Reply:
        path = path_of(request)
        if path == "/data/projects":
            return 200, {"Content-Type": "application/json"}, b'{"ResultSet":{"Result":[{"ID":"P1"}]}}'
        if path == "/data/upload":
            return 200, {}, b""
        page = b"<html><body><h3>Unable to find the specified experiment.</h3>" + b"x" * 5000 + b"</body></html>"
        return 404, {}, page


def make_session(handler: Callable, *, creds: bool = True, **kw: object) -> tuple[XNATSession, ScriptedServer]:
    server = ScriptedServer(handler)
    session = XNATSession(BASE, Credentials("admin", PASSWORD) if creds else None, adapter=server, **kw)
    return session, server


def test_login_opens_a_session_and_basic_goes_with_every_request() -> None:
    """The cookie alone would turn into a guest view when XNAT expires an idle session on a site that
    lets guests in; Basic on every request keeps the user (the server skips re-checking a live session)."""
    fake = FakeXNAT()
    session, server = make_session(fake)
    session.login()
    resp = session.get("/data/projects", params={"format": "json"})
    assert resp.json()["ResultSet"]["Result"][0]["ID"] == "P1"
    login, listing = server.requests
    assert (login.method, path_of(login)) == ("POST", "/data/JSESSION")
    assert listing.headers["Authorization"] == "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert "JSESSIONID=TOKEN0001" in listing.headers["Cookie"]


def test_an_anonymous_session_sends_no_authorization() -> None:
    fake = FakeXNAT()
    session, server = make_session(fake, creds=False)
    session.login()
    session.get("/data/projects", params={"format": "json"}, ok=(200, 401), expect_data=False)
    assert server.requests and all("Authorization" not in r.headers for r in server.requests)


def test_login_falls_back_to_services_auth_form() -> None:
    fake = FakeXNAT()
    fake.jsession_route = False
    session, server = make_session(fake)
    session.login()
    sent = [(r.method, path_of(r)) for r in server.requests]
    assert sent == [("POST", "/data/JSESSION"), ("PUT", "/data/services/auth")]
    assert session.get("/data/projects").status_code == 200


def test_failed_login_is_authentication_error_without_the_password() -> None:
    session, _ = make_session(FakeXNAT())
    session._credentials = Credentials("admin", "wrong-" + PASSWORD)
    with pytest.raises(AuthenticationError) as info:
        session.login()
    assert info.value.errno == 13
    assert PASSWORD not in str(info.value) and "admin" in str(info.value)


def test_expired_session_relogs_in_once_transparently(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeXNAT()
    session, server = make_session(fake)
    session.login()
    fake.valid.clear()  # the server dropped every session
    with caplog.at_level(logging.DEBUG):
        assert session.get("/data/projects").status_code == 200
    assert fake.issued == 2
    sent = [path_of(r) for r in server.requests]
    assert sent == ["/data/JSESSION", "/data/projects", "/data/JSESSION", "/data/projects"]
    assert PASSWORD not in caplog.text and "TOKEN" not in caplog.text


def test_relogin_rewinds_a_file_body() -> None:
    fake = FakeXNAT()
    session, server = make_session(fake)
    session.login()
    fake.valid.clear()
    session.put("/data/upload", data=io.BytesIO(b"payload-bytes"))
    assert server.bodies[-1] == b"payload-bytes"
    assert server.bodies[-3] == b"payload-bytes"  # the first try, refused with 401


def test_persistent_401_raises_after_one_relogin() -> None:
    def handler(request: requests.PreparedRequest) -> Reply:
        if path_of(request) == "/data/JSESSION":
            return 200, {}, b"TOK"
        return 401, {}, b"<html>denied</html>"

    session, server = make_session(handler)
    session.login()
    with pytest.raises(AuthenticationError):
        session.get("/data/projects")
    assert [path_of(r) for r in server.requests].count("/data/JSESSION") == 2


def test_anonymous_401_says_how_to_log_in() -> None:
    session, _ = make_session(lambda r: (401, {}, b""), creds=False)
    with pytest.raises(AuthenticationError) as info:
        session.get("/data/projects")
    assert "netrc" in str(info.value)


@pytest.mark.parametrize(("status", "cls"),
                         [(403, PermissionDenied), (404, NotFound), (409, Conflict), (500, ServerError)])
def test_status_maps_to_error_with_redacted_url_and_short_excerpt(status: int, cls: type) -> None:
    page = b"<html><body><h3>Problem</h3>" + b"y" * 10_000 + b"</body></html>"
    session, _ = make_session(lambda r: (status, {}, page), creds=False)
    with pytest.raises(cls) as info:
        session.get("/data/projects/X", params={"alias": "tok-secret", "format": "json"})
    exc = info.value
    assert exc.status == status
    assert "tok-secret" not in str(exc) and "/data/projects/X" in exc.url
    assert "Problem" in exc.excerpt and len(str(exc)) < 500


def test_html_page_with_200_is_a_server_error() -> None:
    session, _ = make_session(lambda r: (200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html>Login</html>"),
                              creds=False)
    with pytest.raises(ServerError) as info:
        session.get("/data/projects")
    assert "HTML" in str(info.value)


def test_html_login_page_on_logged_in_session_triggers_relogin() -> None:
    state = {"n": 0}

    def handler(request: requests.PreparedRequest) -> Reply:
        if path_of(request) == "/data/JSESSION":
            return 200, {}, b"TOK"
        state["n"] += 1
        if state["n"] == 1:
            return 200, {}, b"<html><form name='form1' action='/xnat/login'></html>"
        return 200, {}, b"[]"

    session, server = make_session(handler)
    session.login()
    assert session.get("/data/projects").json() == []
    assert [path_of(r) for r in server.requests].count("/data/JSESSION") == 2


def test_get_json_sends_format_last_and_rejects_non_json() -> None:
    session, server = make_session(lambda r: (200, {}, b'{"a": 1}'), creds=False)
    assert session.get_json("/data/projects", {"columns": "ID,label", "format": "xml"}) == {"a": 1}
    assert query_of(server.requests[-1]) == [("columns", "ID,label"), ("format", "json")]
    session2, _ = make_session(lambda r: (200, {}, b"not json"), creds=False)
    with pytest.raises(ServerError):
        session2.get_json("/data/projects")


def test_every_call_carries_the_configured_timeouts() -> None:
    settings = Settings(timeouts=Timeouts(connect=1.5, read=7.0))
    session, server = make_session(lambda r: (200, {}, b"[]"), creds=False, settings=settings)
    session.get("/a")
    session.put("/b", data=b"x")
    session.get("/c", timeout=2.0)
    assert server.timeouts == [(1.5, 7.0), (1.5, 7.0), (2.0, 2.0)]


@pytest.mark.parametrize(
    ("raised", "cls"),
    [
        (requests.ConnectTimeout("connect timed out"), RequestTimeout),
        (requests.ReadTimeout("read timed out"), RequestTimeout),
        (requests.ConnectionError("refused"), TransportError),
    ],
)
def test_transport_exceptions_are_translated(raised: Exception, cls: type) -> None:
    session, _ = make_session(lambda r: raised, creds=False)
    with pytest.raises(cls) as info:
        session.get("/data/projects")
    assert type(info.value) is cls
    assert isinstance(info.value.__cause__, requests.RequestException)


def test_stream_reads_exact_sizes_and_chunks() -> None:
    body = bytes(range(256)) * 100
    session, _ = make_session(lambda r: (200, {"Content-Length": str(len(body))}, body), creds=False)
    with session.open_stream("GET", "/data/file") as stream:
        assert stream.status == 200
        assert stream.read(10) == body[:10]
        assert stream.read(1000) == body[10:1010]
        assert b"".join(stream.iter_chunks(4096)) == body[1010:]


def test_stream_error_status_raises_before_reading() -> None:
    session, _ = make_session(lambda r: (404, {}, b"<html>gone</html>"), creds=False)
    with pytest.raises(NotFound):
        session.open_stream("GET", "/data/file")


def test_logout_deletes_the_session_once_and_close_is_idempotent() -> None:
    fake = FakeXNAT()
    session, server = make_session(fake)
    session.login()
    session.close()
    session.close()
    sent = [(r.method, path_of(r)) for r in server.requests]
    assert sent == [("POST", "/data/JSESSION"), ("DELETE", "/data/JSESSION")]
    assert fake.valid == set()


def test_reused_jsession_is_not_logged_out() -> None:
    fake = FakeXNAT()
    fake.valid.add("SHARED")
    session, server = make_session(fake, creds=False, jsession="SHARED")
    assert session.get("/data/projects").status_code == 200
    session.close()
    assert [r.method for r in server.requests] == ["GET"]
    assert "SHARED" in fake.valid


def test_repr_and_url_checks_never_show_secrets() -> None:
    session, _ = make_session(FakeXNAT())
    assert PASSWORD not in repr(session) and "admin" in repr(session)
    with pytest.raises(ConfigError) as info:
        XNATSession("https://admin:hunter2@xnat.test")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError):
        XNATSession("ftp://xnat.test")
    with pytest.raises(ConfigError):
        session.get("data/projects")


def test_retry_policy_retries_idempotent_verbs_but_never_read_timeouts_or_posts() -> None:
    from urllib3.exceptions import MaxRetryError, ProtocolError, ReadTimeoutError

    from xnatfs.settings import RetryPolicy
    from xnatfs.transport.http import make_retry

    retry = make_retry(RetryPolicy(total=3))
    dropped = ProtocolError("Connection aborted.", ConnectionResetError())
    once = retry.increment(method="GET", url="/x", error=dropped)
    assert once.read == 0
    with pytest.raises(MaxRetryError):  # a second dropped connection is not retried again
        once.increment(method="GET", url="/x", error=dropped)
    with pytest.raises(ReadTimeoutError):
        retry.increment(method="GET", url="/x", error=ReadTimeoutError(None, "/x", "read timed out"))
    with pytest.raises(ProtocolError):
        retry.increment(method="POST", url="/x", error=dropped)
    assert not retry.is_retry("POST", 503) and retry.is_retry("GET", 503) and not retry.is_retry("GET", 500)


def test_answers_are_the_transports_own_response() -> None:
    session, _ = make_session(lambda r: (200, {"content-type": "application/json"}, b'{"a": 1}'), creds=False)
    resp = session.get("/data/projects")
    assert not isinstance(resp, requests.Response)
    assert (resp.status_code, resp.ok, resp.json(), resp.text) == (200, True, {"a": 1}, '{"a": 1}')
    assert resp.headers["Content-Type"] == "application/json" and "CONTENT-TYPE" in resp.headers
    with pytest.raises(TypeError):  # streaming is open_stream's job
        session.get("/data/projects", stream=True)


@pytest.mark.parametrize("failure", [TimeoutError("timed out"), ConnectionResetError("reset by peer")])
def test_an_error_answer_whose_body_breaks_still_reports_its_status(failure: OSError) -> None:
    """The leak of issue 11 without sockets: reading a 500's excerpt raised urllib3's ReadTimeoutError."""
    def handler(request: requests.PreparedRequest) -> Reply:
        return 500, {"Content-Length": "100000"}, BrokenBody(b"<html>Internal error", failure)
    session, _ = make_session(handler, creds=False, settings=Settings(unreachable_hold=0))
    with pytest.raises(ServerError) as streamed:
        session.open_stream("GET", "/data/file")
    with pytest.raises(ServerError) as read_whole:
        session.get("/data/file")
    for caught in (streamed, read_whole):
        assert caught.value.status == 500 and "Internal error" in str(caught.value)


@pytest.mark.parametrize("failure, cls", [(TimeoutError("timed out"), RequestTimeout),
                                          (ConnectionResetError("reset by peer"), TransportError)])
def test_a_body_that_breaks_is_our_error_in_every_reader(failure: OSError, cls: type) -> None:
    def handler(request: requests.PreparedRequest) -> Reply:
        return 200, {"Content-Length": "100000"}, BrokenBody(b"x" * 1000, failure)
    session, _ = make_session(handler, creds=False, settings=Settings(unreachable_hold=0))
    with pytest.raises(cls):
        session.get_json("/data/projects")
    readers = [lambda s: s.read(), lambda s: s.read(50_000), lambda s: s.readinto(bytearray(50_000)),
               lambda s: list(s.iter_chunks(4096))]
    for read in readers:
        with session.open_stream("GET", "/data/file") as stream:
            with pytest.raises(cls):
                read(stream)


def test_public_type_hints_name_no_requests_or_urllib3_type() -> None:
    """What callers of the transport see is ours; requests types appear only in inputs the transport makes
    or that tests inject: ``XNATSession(adapter=…)`` and ``Stream(response, …)`` (built by the session)."""
    import inspect

    from xnatfs.model.connect import Connection
    from xnatfs.transport import responses

    checked = 0
    for owner in (XNATSession, responses.Stream, responses.Response, responses.Headers, Connection):
        for name, member in inspect.getmembers(owner):
            function = member.fget if isinstance(member, property) else member
            if name.startswith("_") and name != "__init__" or not callable(function):
                continue
            hints = inspect.get_annotations(function)  # strings: requests types are spelled requests.X
            hints.pop("adapter", None)
            if owner is responses.Stream and name == "__init__":
                continue  # built by the session only, around the requests answer it wraps
            for label, hint in hints.items():
                assert not any(word in repr(hint) for word in ("requests.", "urllib3.")), (owner, name, label, hint)
            checked += 1
    assert checked > 20
