"""Issue 18, row 3, on a real mount: a server that trickles a listing cannot keep ``ls`` alive.

A front server passes everything to the emulator except the listing of one project's subjects, which it
answers one byte every 2 s (each byte well within ``--timeout``). ``ls`` of that folder ends within
3× ``--timeout`` with "Connection timed out" (the request's deadline, twice the timeout, closes the
connection), with one log line; an ``ls`` of it that is SIGKILLed ends at once; a listing of another
folder meanwhile is not queued behind the stuck one.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from mounting import MountFactory, require_tools
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

TIMEOUT = 2.0
TRICKLED = "/data/projects/DEMO/subjects"


class TrickleFront:
    """Forwards to ``upstream``; answers GETs of :data:`TRICKLED` one byte every 2 s."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.stopping = threading.Event()
        self.trickled = 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _serve(self) -> None:
                length = self.headers.get("Content-Length", "")
                body = self.rfile.read(int(length)) if length.isdigit() else None
                if self.command == "GET" and urlsplit(self.path).path == TRICKLED:
                    front.trickled += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.close_connection = True
                    for _ in range(300):
                        if front.stopping.wait(2.0):
                            return
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=20)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> TrickleFront:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def front(emulator: EmulatorServer) -> Iterator[tuple[TrickleFront, EmulatorServer]]:
    with TrickleFront(emulator.url) as trickle:
        class Fronted:
            def __getattr__(self, name: str) -> Any:
                return getattr(emulator, name)

        fronted = Fronted()
        fronted.url = trickle.url  # type: ignore[attr-defined]
        yield trickle, fronted  # type: ignore[misc]


def test_ls_of_a_trickled_listing_ends_within_three_timeouts(front: tuple[TrickleFront, EmulatorServer],
                                                             mount_factory: MountFactory) -> None:
    require_tools("ls")
    trickle, server = front
    mounted = mount_factory(server, "--timeout", f"{TIMEOUT:g}")
    mounted.expect_errors = True
    started = time.monotonic()
    slow = subprocess.Popen(["ls", str(mounted.path / "projects/DEMO/subjects")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    other = subprocess.run(["ls", str(mounted.path / "projects/DEMO/resources")], capture_output=True, text=True,
                           timeout=30)
    other_took = time.monotonic() - started - 0.3
    _, err = slow.communicate(timeout=60)
    took = time.monotonic() - started
    assert trickle.trickled >= 1
    assert slow.returncode != 0 and "Connection timed out" in err, err
    assert took < 3 * TIMEOUT, took
    assert other.returncode == 0 and "protocols" in other.stdout  # not queued behind the stuck listing
    assert other_took < 1.5 * TIMEOUT, other_took  # well before the stuck one ends (2 timeouts)
    errors = [line for line in mounted.log_text().splitlines() if "within 4 s" in line]
    assert len(errors) == 1, mounted.log_text()


def test_a_sigkilled_ls_of_a_trickled_listing_ends_at_once(front: tuple[TrickleFront, EmulatorServer],
                                                            mount_factory: MountFactory) -> None:
    """Once the daemon has read the kernel's request, the kernel waits for its answer even after SIGKILL
    (``request_wait_answer``): the daemon sees the caller has SIGKILL pending and cuts the request at once,
    well before its deadline (2x the timeout). Before issue 18 the ``ls`` outlived SIGKILL by minutes."""
    require_tools("ls")
    trickle, server = front
    mounted = mount_factory(server, "--timeout", f"{TIMEOUT:g}")
    mounted.expect_errors = True
    started = time.monotonic()
    slow = subprocess.Popen(["ls", str(mounted.path / "projects/DEMO/subjects")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while trickle.trickled == 0 and time.monotonic() < started + 10:
        time.sleep(0.05)
    time.sleep(0.5)
    assert slow.poll() is None  # still waiting for the listing
    killed = time.monotonic()
    os.kill(slow.pid, signal.SIGKILL)
    slow.wait(timeout=30)
    assert slow.returncode == -signal.SIGKILL
    assert time.monotonic() - killed < 1.5 < 2 * TIMEOUT - (killed - started)  # the deadline was further off
    assert "went away (killed)" in mounted.log_text()
