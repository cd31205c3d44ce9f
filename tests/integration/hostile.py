"""Small hostile HTTP(S) servers for tests: XNAT-shaped enough for ``xnatfs.connect``, then misbehaving.

The emulator is well-behaved; these servers are not. Each route is a Python function that gets an
:class:`Exchange` with raw control of the socket (lying ``Content-Length``, endless bodies, stalls,
redirects), and every request is recorded with its headers, so a test can assert that credentials
never reached a server. They bind 127.0.0.1 port 0 and stop (waking stalled handlers) on ``stop()``.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

TOKEN = "0123456789ABCDEF0123456789ABCDEF"
HTML_LOGIN_PAGE = (b"<!DOCTYPE html>\n<html><head><title>XNAT - Login</title></head><body>"
                   b"<form action=\"/login\" method=\"post\"><input name=\"username\"/>"
                   b"<input name=\"password\" type=\"password\"/></form></body></html>")


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class Exchange:
    """One request and raw means to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, server: HostileServer, received: Received) -> None:
        self.handler = handler
        self.server = server
        self.request = received

    def reply(self, status: int, body: bytes | str | Any = b"", headers: dict[str, str] | None = None) -> None:
        """A complete answer; a dict/list body is sent as JSON."""
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        data = body.encode() if isinstance(body, str) else body
        self.head(status, {"Content-Length": str(len(data)), **(headers or {})})
        self.write(data)

    def head(self, status: int, headers: dict[str, str] | None = None) -> None:
        """The status line and headers only (the body is up to the caller)."""
        self.handler.send_response(status)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.end_headers()

    def write(self, data: bytes) -> bool:
        """Send ``data``; False once the client has gone."""
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
            return True
        except OSError:
            return False

    def endless(self, chunk: bytes = b"x" * 65536, cap: int = 512 * 1024 * 1024) -> None:
        """Send ``chunk`` until the client goes away, the server stops, or ``cap`` bytes went out;
        the count is added to ``server.sent[path]``."""
        sent = 0
        while sent < cap and not self.server.stopping.is_set() and self.write(chunk):
            sent += len(chunk)
        with self.server._lock:
            self.server.sent[self.request.path] = self.server.sent.get(self.request.path, 0) + sent
        self.close()

    def stall(self, seconds: float = 30.0) -> None:
        """Send nothing more until the server stops (or ``seconds`` pass)."""
        self.server.stopping.wait(seconds)
        self.close()

    def close(self) -> None:
        self.handler.close_connection = True


Route = Callable[[Exchange], None]


class HostileServer:
    """An HTTP(S) server on 127.0.0.1 whose routes are ``(METHOD, path) -> function(exchange)``."""

    def __init__(self, routes: dict[tuple[str, str], Route] | None = None, *, tls: ssl.SSLContext | None = None,
                 fallback: Route | None = None) -> None:
        self.routes: dict[tuple[str, str], Route] = dict(routes or {})
        self.fallback = fallback or (lambda ex: ex.reply(404, b"<html><h3>Not found</h3></html>"))
        self.received: list[Received] = []
        self.sent: dict[str, int] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._tls = tls
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, handler: Route) -> None:
        self.routes[(method, path)] = handler

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def start(self) -> HostileServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _serve(self) -> None:
                length = self.headers.get("Content-Length", "")
                body = self.rfile.read(int(length)) if length.isdigit() else b""
                parts = urlsplit(self.path)
                received = Received(self.command, parts.path, parts.query, dict(self.headers.items()), body)
                with server._lock:
                    server.received.append(received)
                route = server.routes.get((self.command, parts.path), server.fallback)
                try:
                    route(Exchange(self, server, received))
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if self._tls is not None:
            self._httpd.socket = self._tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def has_session(exchange: Exchange) -> bool:
    return f"JSESSIONID={TOKEN}" in exchange.request.headers.get("Cookie", "")


def xnat_routes(user: str = "admin", password: str = "admin") -> dict[tuple[str, str], Route]:
    """Login (``POST /data/JSESSION`` with Basic → cookie), logout, version, and an empty schema list."""

    def login(ex: Exchange) -> None:
        if ex.request.headers.get("Authorization") != basic(user, password):
            ex.reply(401, b"<html><h3>Login failed</h3></html>", {"WWW-Authenticate": 'Basic realm="XNAT"'})
            return
        ex.reply(200, TOKEN, {"Content-Type": "text/plain", "Set-Cookie": f"JSESSIONID={TOKEN}; Path=/; HttpOnly"})

    def alive(ex: Exchange) -> None:
        ex.reply(200, TOKEN, {"Content-Type": "text/plain"}) if has_session(ex) else ex.reply(401, b"<html></html>")

    return {
        ("POST", "/data/JSESSION"): login,
        ("GET", "/data/JSESSION"): alive,
        ("DELETE", "/data/JSESSION"): lambda ex: ex.reply(200, b""),
        ("GET", "/xapi/siteConfig/buildInfo"): lambda ex: ex.reply(200, {"version": "1.8.10-hostile"}),
        ("GET", "/xapi/schemas"): lambda ex: ex.reply(200, []),
    }


def resultset(rows: list[dict[str, str]]) -> dict[str, Any]:
    return {"ResultSet": {"Result": rows, "totalRecords": str(len(rows))}}


def project_routes(files: dict[str, int] | None = None) -> dict[tuple[str, str], Route]:
    """Project ``P`` with resource ``r`` holding ``files`` (name → size in the listing)."""
    files = files or {}
    return {
        ("GET", "/data/projects"): lambda ex: ex.reply(200, resultset([{"ID": "P", "name": "P"}])),
        ("GET", "/data/projects/P/resources"): lambda ex: ex.reply(
            200, resultset([{"xnat_abstractresource_id": "1", "label": "r"}])),
        ("GET", "/data/projects/P/resources/r/files"): lambda ex: ex.reply(200, resultset([
            {"Name": name, "Size": str(size), "URI": f"/data/projects/P/resources/r/files/{name}", "digest": ""}
            for name, size in files.items()])),
    }
