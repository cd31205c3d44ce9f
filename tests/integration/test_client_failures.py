"""Failures against the emulator's fault switches: expired sessions, slow servers, 5xx, a dead server."""

from __future__ import annotations

import io
import time

import pytest

import xnatfs
from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import RequestTimeout, ServerError, TransportError
from xnatfs.model.connect import Connection

pytestmark = pytest.mark.integration


def test_a_dropped_server_session_costs_nothing(xnat: Connection, emulator: EmulatorServer) -> None:
    """Basic goes with every request, so a session the server dropped (timeout, restart) is replaced by
    the server on the next request: no 401, no re-login, no repeated request."""
    assert "DEMO" in xnat.projects.keys()
    emulator.app.sessions.clear()  # as a server-side session timeout or restart would
    emulator.faults.reset_counts()
    assert "DEMO" in xnat.projects.refresh().keys()
    counts = emulator.faults.counts()["by_route"]
    assert counts.get("POST /data/JSESSION", 0) == 0
    assert counts["GET /data/projects"] == 1


def test_relogin_repeats_an_upload_with_its_whole_body(fresh_xnat: Connection, fresh_emulator: EmulatorServer) -> None:
    resource = fresh_xnat.projects.create("RL").resources.create("r")
    fresh_emulator.app.sessions.clear()
    payload = b"0123456789" * 10_000
    uploaded = resource.upload(io.BytesIO(payload), "after-expiry.bin")
    with uploaded.open() as handle:
        assert handle.read() == payload


def test_a_slow_server_times_out_within_the_timeout(fresh_emulator: EmulatorServer) -> None:
    # A server of its own: the slow request still runs on the server after the client gave up.
    with xnatfs.connect(fresh_emulator.url, "admin", "admin", timeout=0.5) as connection:
        fresh_emulator.set_faults(latency_ms=3000)
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            connection.projects.refresh().keys()
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"took {elapsed:.1f} s for a 0.5 s timeout"
    assert info.value.errno == 110


def test_a_stalled_download_times_out(fresh_emulator: EmulatorServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with xnatfs.connect(fresh_emulator.url, "admin", "admin", timeout=0.5) as connection:
        resource = connection.projects.create("SLOW").resources.create("r")
        resource.upload(io.BytesIO(b"x" * 512 * 1024), "big.bin")
        file = resource.files["big.bin"]
        fresh_emulator.set_faults(bandwidth_mibps=0.01)  # 64 KiB per ~6 s
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            file.download(tmp_path / "out.bin", verify=False)
        assert time.monotonic() - started < 3.0
        assert not (tmp_path / "out.bin").exists()


# ``xnat`` before ``faults``: the faults are switched off before the connection logs out.
def test_503_is_retried_for_gets_but_500_is_not(xnat: Connection, faults: EmulatorServer) -> None:
    faults.faults.reset_counts()
    faults.set_faults(fail_rate=1.0, fail_status=503)
    with pytest.raises(ServerError) as info:
        xnat.projects.refresh().keys()
    assert info.value.status == 503
    retries = xnat.session.settings.retry.total
    assert faults.faults.counts()["by_route"]["GET FAULT"] == retries + 1
    faults.faults.reset_counts()
    faults.set_faults(fail_status=500)
    with pytest.raises(ServerError):
        xnat.projects.refresh().keys()
    assert faults.faults.counts()["by_route"]["GET FAULT"] == 1


def test_post_is_never_retried(xnat: Connection, faults: EmulatorServer) -> None:
    faults.faults.reset_counts()
    faults.set_faults(fail_rate=1.0, fail_status=503)
    with pytest.raises(ServerError):
        xnat.post("/data/services/prearchive/rebuild", params={"src": "/prearchive/projects/X/1/Y"})
    assert faults.faults.counts()["by_route"]["POST FAULT"] == 1


def test_a_stopped_server_fails_fast_with_a_transport_error(fresh_emulator: EmulatorServer) -> None:
    connection = xnatfs.connect(fresh_emulator.url, "admin", "admin", timeout=1.0)
    fresh_emulator.stop(close_store=False)
    started = time.monotonic()
    with pytest.raises(TransportError):
        connection.projects.refresh().keys()
    assert time.monotonic() - started < 5.0
    connection.close()  # logout fails quietly
