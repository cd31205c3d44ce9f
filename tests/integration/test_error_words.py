"""Issue 17 item 2: what went wrong is said in words, never as an HTML page or urllib3's internals.

The commands run as a user runs them (a subprocess of ``xnatfs``), against the emulator or a port
nothing listens on; the name-resolution case runs in-process with ``getaddrinfo`` failing, so the test
does not depend on the machine's resolver.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import xnatfs
from xnatfs.cli import main
from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import NotFound, TransportError

pytestmark = pytest.mark.integration

INTERNALS = ("<html", "<head", "<title", "Max retries", "HTTPConnectionPool", "_Deadline", "urllib3",
             "NewConnectionError", "Traceback")


def run_xnatfs(*args: str, password: str | None = "admin") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XNATFS_PASSWORD"}
    env["HOME"] = "/nonexistent"  # no ~/.netrc of the machine's
    if password is not None:
        env["XNATFS_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "xnatfs", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def assert_in_words(err: str) -> None:
    for internal in INTERNALS:
        assert internal not in err, f"{internal!r} in: {err}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_wrong_password_says_so(emulator: EmulatorServer) -> None:
    done = run_xnatfs("prearchive", "list", emulator.url, "-u", "admin", password="not-the-password")
    assert done.returncode == 1
    assert "refused the password of user 'admin'" in done.stderr and "XNATFS_PASSWORD" in done.stderr
    assert "not-the-password" not in done.stderr
    assert_in_words(done.stderr)


def test_a_url_without_xnat_says_to_check_the_path(emulator: EmulatorServer) -> None:
    done = run_xnatfs("prearchive", "list", f"{emulator.url}/xnat", "-u", "admin")
    assert done.returncode == 1
    assert f"No XNAT at {emulator.url}/xnat" in done.stderr and "check the URL's path" in done.stderr
    assert_in_words(done.stderr)


def test_a_server_that_is_not_running_says_so() -> None:
    done = run_xnatfs("prearchive", "list", f"http://127.0.0.1:{free_port()}", "-u", "admin")
    assert done.returncode == 1
    assert "connection refused (is the server running, and is the port right?)" in done.stderr
    assert_in_words(done.stderr)


def test_https_to_a_plain_http_server_suggests_http(emulator: EmulatorServer) -> None:
    plain = emulator.url.removeprefix("http://")
    done = run_xnatfs("prearchive", "list", f"https://{plain}", "-u", "admin")
    assert done.returncode == 1
    assert "does not speak TLS" in done.stderr and f"use http://{plain}" in done.stderr
    assert "--ca-bundle" not in done.stderr
    assert_in_words(done.stderr)


def test_an_unknown_host_says_its_name_does_not_resolve(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def no_such_name(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    monkeypatch.setenv("XNATFS_PASSWORD", "admin")
    assert main(["prearchive", "list", "http://xnat.example.invalid", "-u", "admin"]) == 1
    err = capsys.readouterr().err
    assert "Cannot find the server xnat.example.invalid: its name does not resolve" in err
    assert_in_words(err)


def test_an_error_page_is_quoted_by_its_words(emulator: EmulatorServer) -> None:
    with xnatfs.connect(emulator.url, user="admin", password="admin") as xnat:
        with pytest.raises(NotFound) as caught:
            xnat.get("/data/projects/NO_SUCH_PROJECT/resources/R/files/x.txt")
    message = str(caught.value)
    assert "HTTP 404" in message and "not found" in message.lower()
    assert_in_words(message)


def test_transport_errors_keep_their_class(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(TransportError) as caught:
        xnatfs.connect(f"http://127.0.0.1:{free_port()}", user="admin", password="admin", load_schemas=False)
    assert "connection refused" in str(caught.value)
