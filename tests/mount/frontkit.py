"""A small front server for mount tests: it sits between the mount and the emulator, forwards what it
does not answer itself, and records every request.

It can terminate TLS (``tls``), answer some requests with a complete answer of its own (``answer``:
an HTML login page instead of a file, a hostile document), or take a request over entirely
(``intercept``: an answer trickled byte by byte).
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

#: ``answer(method, path)`` → ``(status, headers, body)`` to send instead of the server's answer, or None
Answer = Callable[[str, str], "tuple[int, dict[str, str], bytes] | None"]
#: ``intercept(handler)`` → True if it answered the request itself, on the handler's socket
Intercept = Callable[[BaseHTTPRequestHandler], bool]


class Front:
    """An HTTP(S) server on 127.0.0.1 that forwards to ``upstream``; see the module docstring."""

    HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}

    def __init__(self, upstream: str, *, tls: ssl.SSLContext | None = None, answer: Answer | None = None,
                 intercept: Intercept | None = None) -> None:
        self.upstream = urlsplit(upstream)
        self.tls = tls
        self.answer = answer
        self.intercept = intercept
        self.received: list[str] = []
        self.handshakes_failed = 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _serve(self) -> None:
                front.received.append(f"{self.command} {self.path}")
                length = self.headers.get("Content-Length", "")
                body = self.rfile.read(int(length)) if length.isdigit() else None
                if front.intercept is not None and front.intercept(self):
                    return
                own = front.answer(self.command, self.path) if front.answer is not None else None
                if own is not None:
                    self._answer(*own)
                    return
                upstream = http.client.HTTPConnection(front.upstream.hostname, front.upstream.port, timeout=20)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in front.HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    self._answer(answer.status, {k: v for k, v in answer.getheaders()
                                                 if k.lower() not in front.HOP_BY_HOP}, data)
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                front.handshakes_failed += 1  # a refused TLS handshake ends here

        self._httpd = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> Front:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


__all__ = ["Answer", "Front", "Intercept"]
