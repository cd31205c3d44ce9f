"""Security of the client library and its commands: no password in reprs, logs (DEBUG, urllib3 too),
exceptions (on 401/404/500/503, timeouts, refused connections, servers that echo what they got),
URLs or ``ps``; insecure netrc files refused by ``connect()`` before any request; TLS verified by
default, with an explicit CA bundle or an explicit, logged ``verify=False``.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

import xnatfs
from xnatfs import commands
from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import (
    AuthenticationError,
    ConfigError,
    InsecureNetrcError,
    NotFound,
    RequestTimeout,
    ServerError,
    TLSError,
    TransportError,
    XNATError,
)

from hostile import TOKEN, Exchange, HostileServer, resultset, xnat_routes

pytestmark = pytest.mark.integration

ALICE, ALICE_PASSWORD = "alice", "alice-secret"  # a user of the shared sample emulator (tests/conftest.py)
PASSWORD = "s3cret-Pa55-for-hostile"


def secrets_of(user: str, password: str, *tokens: str | None) -> list[str]:
    """The password, its HTTP Basic form, and session IDs: none may ever be shown."""
    return [password, base64.b64encode(f"{user}:{password}".encode()).decode(), *[t for t in tokens if t]]


class AllLogs(logging.Handler):
    """Every record of every client-side logger (xnatfs, urllib3, requests…) at DEBUG, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("xnatfs.emulator", "werkzeug")):
            return  # the server side of the in-process emulator is not under test here
        self.lines.append(self.format(record) + " " + repr(record.args))


@pytest.fixture
def all_logs() -> Iterator[AllLogs]:
    handler = AllLogs()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def said(exc: BaseException) -> str:
    """Everything an exception can show: str, repr, and the whole chained traceback."""
    return str(exc) + repr(exc) + "".join(traceback.format_exception(exc))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the password in reprs, logs, exceptions, URLs -----------------------------------------------------

def exercise(connection: xnatfs.Connection, emulator: EmulatorServer, tmp_path: Path) -> list[str]:
    """Reads, a download, a dropped server session, and 404/500/503 answers; returns what the objects and
    errors said."""
    texts = [repr(connection), str(connection), repr(connection.session), repr(connection.projects),
             repr(connection.context), connection.url]
    session = connection.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_MR_1"]
    files = session.scans["2"].resources["DICOM"].files
    file = files["2.MR.0001.dcm"]
    texts += [repr(session), repr(files), repr(file), file.uri]
    with file.open() as handle:
        texts.append(repr(handle.raw))
        handle.read(1000)
    file.download(tmp_path / "one.dcm")
    emulator.app.sessions.clear()  # the server forgets the session: Basic on the next request re-authenticates
    assert "DEMO" in connection.projects.refresh().keys()
    errors: list[BaseException] = []
    with pytest.raises(NotFound) as info:
        connection.get("/data/projects/NO_SUCH_PROJECT")
    errors.append(info.value)
    for status in (500, 503):
        emulator.set_faults(fail_rate=1.0, fail_status=status)
        try:
            with pytest.raises(ServerError) as info:
                connection.projects.refresh().keys()
            errors.append(info.value)
        finally:
            emulator.set_faults(fail_rate=0, fail_status=503)
    return texts + [said(e) for e in errors]


def test_the_password_never_shows_with_explicit_credentials(emulator: EmulatorServer, all_logs: AllLogs,
                                                            tmp_path: Path) -> None:
    tokens = []
    with xnatfs.connect(emulator.url, ALICE, ALICE_PASSWORD) as connection:
        tokens.append(connection.session.jsession)
        texts = exercise(connection, emulator, tmp_path)
        tokens.append(connection.session.jsession)  # the one the server issued after dropping the first
    shown = "\n".join(texts + all_logs.lines)
    assert "GET /data/projects" in shown  # the logs were captured,
    assert any(line.startswith("urllib3.connectionpool DEBUG") for line in all_logs.lines)  # urllib3's too
    for secret in secrets_of(ALICE, ALICE_PASSWORD, *tokens):
        assert secret not in shown


def test_the_password_never_shows_with_netrc_credentials(emulator: EmulatorServer, all_logs: AllLogs,
                                                         tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {ALICE} password {ALICE_PASSWORD}\n")
    netrc.chmod(0o600)
    with xnatfs.connect(emulator.url, netrc_file=str(netrc)) as connection:
        token = connection.session.jsession
        texts = exercise(connection, emulator, tmp_path)
    shown = "\n".join(texts + all_logs.lines)
    for secret in secrets_of(ALICE, ALICE_PASSWORD, token):
        assert secret not in shown


def test_the_password_never_shows_when_the_connection_fails(emulator: EmulatorServer, all_logs: AllLogs,
                                                            tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {ALICE} password {PASSWORD}\n")
    netrc.chmod(0o600)
    failures: list[BaseException] = []
    with pytest.raises(AuthenticationError) as refused:  # 401: wrong password, from the netrc
        xnatfs.connect(emulator.url, netrc_file=str(netrc))
    failures.append(refused.value)
    with pytest.raises(AuthenticationError) as refused:  # 401: wrong password, explicit
        xnatfs.connect(emulator.url, ALICE, PASSWORD)
    failures.append(refused.value)
    with pytest.raises(TransportError) as down:  # nothing listening
        xnatfs.connect(f"http://127.0.0.1:{closed_port()}", ALICE, PASSWORD, timeout=2)
    failures.append(down.value)
    with HostileServer(fallback=lambda ex: ex.stall(5)) as silent, pytest.raises(RequestTimeout) as slow:
        xnatfs.connect(silent.url, ALICE, PASSWORD, timeout=0.3)
    failures.append(slow.value)
    with pytest.raises(ConfigError) as in_url:  # credentials in the URL are refused, and not repeated
        xnatfs.connect(f"http://{ALICE}:{PASSWORD}@127.0.0.1:{closed_port()}/")
    failures.append(in_url.value)
    shown = "\n".join([said(e) for e in failures] + all_logs.lines)
    assert all(isinstance(e, XNATError) for e in failures)
    for secret in secrets_of(ALICE, PASSWORD):
        assert secret not in shown


def echo(status: int) -> object:
    """A server that puts everything it received (headers, form body) into its error page."""
    def route(ex: Exchange) -> None:
        headers = ex.request.headers
        first = [f"{k}: {headers[k]}" for k in ("Authorization", "Cookie") if k in headers]
        seen = " ".join([*first, ex.request.body.decode(), *(f"{k}: {v}" for k, v in headers.items())])
        ex.reply(status, f"<html><body><h3>Error</h3><pre>{seen}</pre></body></html>", {"Content-Type": "text/html"})
    return route


@pytest.mark.parametrize("where", ["basic-login", "form-login", "data"])
def test_a_server_echoing_the_request_cannot_make_us_repeat_it(all_logs: AllLogs, where: str) -> None:
    routes = xnat_routes("admin", PASSWORD)
    if where == "basic-login":
        routes[("POST", "/data/JSESSION")] = echo(500)
    elif where == "form-login":  # no /data/JSESSION: the form login xnatpy uses, password in the body
        routes[("POST", "/data/JSESSION")] = lambda ex: ex.reply(404, b"<html></html>")
        routes[("PUT", "/data/services/auth")] = echo(401)
    else:
        routes[("GET", "/data/projects")] = echo(500)
    with HostileServer(routes) as server, pytest.raises(XNATError) as info:
        with xnatfs.connect(server.url, "admin", PASSWORD, load_schemas=False, timeout=5) as connection:
            connection.projects.keys()
    if where == "form-login":  # a refused login is said in words; the page adds nothing (issue 17 item 2)
        assert "refused the password of user 'admin'" in str(info.value)
    else:
        assert "Error" in str(info.value)  # the echoed page's words are in the message…
    shown = said(info.value) + "\n".join(all_logs.lines)
    for secret in secrets_of("admin", PASSWORD, TOKEN):
        assert secret not in shown  # …without what it echoed


# -- the commands take no password on the command line --------------------------------------------------

def command_parsers() -> list[argparse.ArgumentParser]:
    parsers = [commands._import_parser(), commands._prearchive_parser()]
    for action in parsers[1]._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers.extend(action.choices.values())
    return parsers


def test_no_command_has_a_password_option(capsys: pytest.CaptureFixture[str]) -> None:
    options = [o for parser in command_parsers() for a in parser._actions for o in a.option_strings]
    assert "--user" in options and "--netrc" in options and "--ca-bundle" in options
    assert len(command_parsers()) == 7  # import, prearchive and its five actions
    assert [o for o in options if "pass" in o.lower() or "pw" in o.lower()] == []
    for argv in (["import", "--help"], ["prearchive", "--help"], ["prearchive", "list", "--help"]):
        assert commands.main(argv) == 0
    assert "XNATFS_PASSWORD" in capsys.readouterr().out
    assert commands.main(["prearchive", "list", "http://127.0.0.1:1", "--password", PASSWORD]) == 2


def test_the_password_is_not_in_the_command_line_of_a_running_command(tmp_path: Path) -> None:
    release = threading.Event()

    def slow_refusal(ex: Exchange) -> None:  # holds the login until the test has looked at `ps`
        release.wait(20)
        ex.reply(401, f"<html><h3>refused {ex.request.headers.get('Authorization')}</h3></html>")

    routes = xnat_routes("admin", PASSWORD)
    routes[("POST", "/data/JSESSION")] = slow_refusal
    env = {**os.environ, commands.PASSWORD_ENV: PASSWORD, "HOME": str(tmp_path)}
    env.pop("NETRC", None)
    with HostileServer(routes) as server:
        process = subprocess.Popen([sys.executable, "-m", "xnatfs", "prearchive", "list", server.url, "--user", "admin",
                                    "--timeout", "10"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while not server.requests_to("/data/JSESSION") and time.monotonic() < deadline:
                time.sleep(0.02)
            assert server.requests_to("/data/JSESSION"), "the command never tried to log in"
            cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
            assert b"prearchive" in cmdline and b"admin" in cmdline
            assert PASSWORD.encode() not in cmdline
        finally:
            release.set()
            out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert b"refused" in err
    for secret in secrets_of("admin", PASSWORD):
        assert secret.encode() not in out + err


# -- netrc files others can read ------------------------------------------------------------------------

@pytest.fixture
def recorder() -> Iterator[HostileServer]:
    with HostileServer(xnat_routes("admin", PASSWORD)) as server:
        yield server


@pytest.mark.parametrize("how", ["netrc_file", "NETRC", "home"])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_netrc_others_can_read_is_refused_before_any_request(recorder: HostileServer, tmp_path: Path, how: str,
                                                                mode: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    netrc = tmp_path / ("netrc" if how != "home" else ".netrc")
    netrc.write_text(f"machine 127.0.0.1 login admin password {PASSWORD}\n")
    netrc.chmod(mode)
    kwargs = {"netrc_file": str(netrc)} if how == "netrc_file" else {}
    if how == "NETRC":
        monkeypatch.setenv("NETRC", str(netrc))
    with pytest.raises(InsecureNetrcError) as info:
        xnatfs.connect(recorder.url, load_schemas=False, **kwargs)  # type: ignore[arg-type]
    assert str(netrc) in str(info.value) and f"chmod 600 {netrc}" in str(info.value)
    assert info.value.errno == 13
    assert PASSWORD not in said(info.value)
    assert recorder.received == []
    netrc.chmod(0o600)  # the same file, private, is used
    with xnatfs.connect(recorder.url, load_schemas=False, **kwargs) as connection:  # type: ignore[arg-type]
        assert connection.user == "admin"


def test_the_commands_refuse_an_insecure_netrc_with_the_fix(recorder: HostileServer, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login admin password {PASSWORD}\n")
    netrc.chmod(0o644)
    assert commands.main(["prearchive", "list", recorder.url, "--netrc", str(netrc)]) == 2
    err = capsys.readouterr().err
    assert f"chmod 600 {netrc}" in err and PASSWORD not in err
    assert recorder.received == []


# -- TLS ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl for this test run."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[HostileServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    routes = xnat_routes("admin", PASSWORD)
    routes[("GET", "/data/projects")] = lambda ex: ex.reply(200, resultset([{"ID": "TLS"}]))
    routes[("GET", "/data/prearchive/projects")] = lambda ex: ex.reply(200, resultset([]))
    with HostileServer(routes, tls=context) as server:
        yield server


def tls_connect(server: HostileServer, **kw: object) -> xnatfs.Connection:
    return xnatfs.connect(server.url, "admin", PASSWORD, load_schemas=False, timeout=5, **kw)  # type: ignore[arg-type]


def test_tls_is_verified_by_default_and_nothing_is_sent_to_an_unverified_server(https_server: HostileServer) -> None:
    with pytest.raises(TLSError) as info:
        tls_connect(https_server)
    message = str(info.value)
    assert "certificate verify failed" in message and "ca_bundle=" in message and "--ca-bundle" in message
    assert PASSWORD not in said(info.value)
    assert https_server.received == []  # no HTTP request: the Basic header never left this process


@pytest.mark.parametrize("how", ["verify", "ca_bundle", "ca_bundle_path"])
def test_an_explicit_ca_bundle_verifies_the_server(https_server: HostileServer, certificate: tuple[Path, Path],
                                                   how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets $REQUESTS_CA_BUNDLE replace a session's CA bundle; an explicit one must still win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile or "/nonexistent")
    cert = certificate[0]
    kw = {"verify": str(cert)} if how == "verify" else {"ca_bundle": str(cert) if how == "ca_bundle" else cert}
    with tls_connect(https_server, **kw) as connection:
        assert connection.projects.keys() == ["TLS"]


def test_verify_false_works_and_says_so_once(https_server: HostileServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="xnatfs"), pytest.warns(Warning):
        with tls_connect(https_server, verify=False) as connection:
            for _ in range(3):
                assert connection.projects.refresh().keys() == ["TLS"]
    warnings = [r for r in caplog.records if r.name.startswith("xnatfs") and "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_bad_tls_options_are_configuration_errors(https_server: HostileServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        tls_connect(https_server, ca_bundle=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="either"):
        tls_connect(https_server, ca_bundle=str(tmp_path), verify=False)
    assert https_server.received == []


def test_the_commands_take_ca_bundle_and_insecure(https_server: HostileServer, certificate: tuple[Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(commands.PASSWORD_ENV, PASSWORD)
    base = ["prearchive", "list", https_server.url, "--user", "admin", "--timeout", "5"]
    assert commands.main(base) == 1
    assert "--ca-bundle" in capsys.readouterr().err
    assert commands.main([*base, "--ca-bundle", str(certificate[0])]) == 0
    assert "PROJECT" in capsys.readouterr().out
    with pytest.warns(Warning):
        assert commands.main([*base, "--insecure"]) == 0
    assert commands.main([*base, "--insecure", "--ca-bundle", str(certificate[0])]) == 2
