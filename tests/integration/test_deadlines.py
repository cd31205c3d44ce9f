"""Issue 18, row 3: a server that trickles its answer is cut off at the request's deadline.

Each byte comes within the socket timeout, so only an overall deadline per request ends it
(``Timeouts.deadline``, twice the read timeout by default): :class:`~xnatfs.errors.DeadlineExceeded`
(ETIMEDOUT, a :class:`~xnatfs.errors.RequestTimeout`), never the truncated answer, whether the server
trickles its headers, a document's body, or a file being streamed.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import xnatfs
from xnatfs.errors import DeadlineExceeded, RequestTimeout
from xnatfs.settings import Settings, Timeouts

from hostile import Exchange, HostileServer, project_routes, resultset, xnat_routes

pytestmark = pytest.mark.integration

TIMEOUT = 1.0
FILE = "/data/projects/P/resources/r/files/f.bin"
SIZE = 100_000


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer(xnat_routes()) as hostile:
        yield hostile


def trickle(ex: Exchange, data: bytes, every: float = 0.3) -> None:
    for i in range(len(data)):
        if ex.server.stopping.wait(every) or not ex.write(data[i:i + 1]):
            break
    ex.close()


def trickled_body(ex: Exchange) -> None:
    body = b'{"ResultSet": {"Result": [], "totalRecords": "0"}}' + b" " * 200
    ex.head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
    trickle(ex, body)


def trickled_body_without_length(ex: Exchange) -> None:
    ex.head(200, {"Content-Type": "application/json", "Connection": "close"})
    trickle(ex, b'{"ResultSet": {"Result": [], "totalRecords": "0"}}' + b" " * 200)


def trickled_headers(ex: Exchange) -> None:
    trickle(ex, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"x" * 200 + b"\r\n\r\n{}")


def trickled_file(ex: Exchange) -> None:
    ex.head(200, {"Content-Length": str(SIZE)})
    ex.write(b"x" * 1000)
    trickle(ex, b"x" * (SIZE - 1000))


def connect(server: HostileServer) -> xnatfs.Connection:
    settings = Settings(timeouts=Timeouts(connect=TIMEOUT, read=TIMEOUT), unreachable_hold=0)
    return xnatfs.connect(server.url, "admin", "admin", load_schemas=False, settings=settings)


@pytest.mark.parametrize("route", [trickled_body, trickled_body_without_length, trickled_headers])
def test_a_trickled_answer_ends_at_the_deadline_with_etimedout(server: HostileServer, route: object) -> None:
    server.route("GET", "/data/projects", route)  # type: ignore[arg-type]
    with connect(server) as xnat:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            xnat.session.get_json("/data/projects")
        took = time.monotonic() - started
    assert 2 * TIMEOUT - 0.2 < took < 2 * TIMEOUT + 1.0, took
    assert isinstance(info.value, RequestTimeout) and info.value.errno == errno.ETIMEDOUT
    assert "within 2 s" in str(info.value)


def test_a_trickled_file_read_ends_at_the_deadline(server: HostileServer, tmp_path: Path) -> None:
    server.routes.update(project_routes({"f.bin": SIZE}))
    server.route("GET", FILE, trickled_file)
    with connect(server) as xnat:
        remote = xnat.projects["P"].resources["r"].files["f.bin"]
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            remote.download(tmp_path / "f.bin")
        took = time.monotonic() - started
    assert took < 2 * TIMEOUT + 1.0, took


def test_a_caller_waiting_for_a_stuck_load_gives_up_with_it(server: HostileServer) -> None:
    """Two threads want the same listing: the second waits for the first's load, and no longer."""
    server.route("GET", "/data/projects", trickled_body)
    with connect(server) as xnat:
        ends: list[float] = []
        errors: list[BaseException] = []

        def list_projects() -> None:
            try:
                xnat.catalog.projects()
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)
            ends.append(time.monotonic())

        started = time.monotonic()
        threads = [threading.Thread(target=list_projects) for _ in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.2)
        for thread in threads:
            thread.join(10)
    assert len(errors) == 2 and all(isinstance(e, RequestTimeout) for e in errors)
    assert max(ends) - started < 2 * TIMEOUT + 1.0
    assert len(server.requests_to("/data/projects")) == 1  # the second shared the first's load


def test_an_honest_slowish_answer_is_not_cut(server: HostileServer) -> None:
    """Within the deadline, a slow but complete answer is read whole."""
    def slow(ex: Exchange) -> None:
        body = str(resultset([{"ID": "P", "name": "P"}])).replace("'", '"').encode()
        ex.head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        ex.write(body[:10])
        time.sleep(0.8 * TIMEOUT)
        ex.write(body[10:])

    server.route("GET", "/data/projects", slow)
    with connect(server) as xnat:
        assert xnat.session.get_json("/data/projects")["ResultSet"]["Result"][0]["ID"] == "P"
