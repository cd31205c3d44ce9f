"""Issue 18, row 3, on a real mount: a server that trickles a listing cannot keep ``ls`` alive.

A front server passes everything to the emulator except the listing of one project's subjects, which it
answers one byte every second (each byte well within ``--timeout``, 2 s: a byte every 2 s raced the read
timeout itself, and the read timeout, not the deadline, sometimes ended the listing). ``ls`` of that folder ends within
3× ``--timeout`` with "Connection timed out" (the request's deadline, twice the timeout, closes the
connection), with one log line; an ``ls`` of it that is SIGKILLed ends at once; a listing of another
folder meanwhile is not queued behind the stuck one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest

from frontkit import Front
from mounting import MountFactory, require_tools
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

TIMEOUT = 2.0
#: seconds between the trickled bytes: well within TIMEOUT, so only the request's deadline ends a listing
BYTE_EVERY = TIMEOUT / 2
TRICKLED = "/data/projects/DEMO/subjects"


class Trickle:
    """A :class:`frontkit.Front` intercept: answers GETs of :data:`TRICKLED` one byte every :data:`BYTE_EVERY` s."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.trickled = 0

    def __call__(self, handler: BaseHTTPRequestHandler) -> bool:
        if handler.command != "GET" or urlsplit(handler.path).path != TRICKLED:
            return False
        self.trickled += 1
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.close_connection = True
        for _ in range(300):
            if self.stopping.wait(BYTE_EVERY):
                break
            try:
                handler.wfile.write(b" ")
                handler.wfile.flush()
            except OSError:
                break
        return True


@pytest.fixture
def front(emulator: EmulatorServer) -> Iterator[tuple[Trickle, EmulatorServer]]:
    trickle = Trickle()
    with Front(emulator.url, intercept=trickle) as proxy:
        class Fronted:
            def __getattr__(self, name: str) -> Any:
                return getattr(emulator, name)

        fronted = Fronted()
        fronted.url = proxy.url  # type: ignore[attr-defined]
        try:
            yield trickle, fronted  # type: ignore[misc]
        finally:
            trickle.stopping.set()


def test_ls_of_a_trickled_listing_ends_within_three_timeouts(front: tuple[Trickle, EmulatorServer],
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


def test_a_sigkilled_ls_of_a_trickled_listing_ends_at_once(front: tuple[Trickle, EmulatorServer],
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
