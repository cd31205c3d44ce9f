"""Malformed requests get a client error, never a server error, and change nothing: bad
percent-encoding, odd parameters, hostile XML bodies (XXE, entity expansion), broken multipart
bodies and Range headers, bad credentials. Requests go out through ``http.client`` so that the bytes
on the wire are exactly the malformed ones (requests would re-quote them)."""

from __future__ import annotations

import base64
import http.client
import logging
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

AUTH = "Basic " + base64.b64encode(b"admin:admin").decode()
CANARY = "XXE-CANARY-7f3a9c"
SUBJECTS = "/data/projects/P1/subjects"
FILE = "/data/projects/P1/resources/docs/files/readme.txt"
README = b"0123456789 read me\n"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """An emulator with project P1, subject S1 and one project file; module scope keeps it fast."""
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-malformed"), users={"admin": "admin"})
    server.start()
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text(CANARY)
    ns = SimpleNamespace(server=server, secret=secret, host=urlsplit(server.url).hostname,
                         port=urlsplit(server.url).port)
    assert send(ns, "PUT", "/data/projects/P1")[0] == 200
    assert send(ns, "PUT", f"{SUBJECTS}/S1")[0] == 201
    assert send(ns, "PUT", FILE, {"Content-Type": "text/plain"}, README)[0] == 200
    yield ns
    server.stop()


def send(target: SimpleNamespace, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw request (path sent byte for byte); returns status, headers (lower-case) and body."""
    connection = http.client.HTTPConnection(target.host, target.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        merged = {"Authorization": AUTH, **(headers or {})}
        if body is not None:
            merged.setdefault("Content-Length", str(len(body)))
        for key, value in merged.items():
            connection.putheader(key, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _snapshot(target: SimpleNamespace) -> tuple:
    store = target.server.store
    resources = store.list_resources(store.get_project("P1"))
    return ([s.label for s in store.list_subjects()], [e.label for e in store.list_experiments(assessors=True)],
            [(r.label, [f.path for f in store.list_files(r.id)]) for r in resources])


BAD_PATHS = [
    "/data/projects/%ZZ",
    "/data/projects/P1/subjects/%E0%A4%A",
    "/data/projects/%00",
    "/data/projects/P1%2F..%2F..%2Fetc",
    "/data/projects/P1/resources/docs/files/..%2F..%2F..%2Fetc%2Fpasswd",
    "/data/projects/P1/resources/docs/files/%2Fetc%2Fpasswd",
    "/data/experiments/%FF%FE/scans",
    "/xapi/schemas/..%2F..%2Fetc",
    "/data/search/elements/%ZZ",
    "/data/prearchive/projects/P1/%ZZ/%00",
    "/data/projects/" + "A" * 5000,
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_are_client_errors(target: SimpleNamespace, path: str) -> None:
    for method in ("GET", "DELETE"):
        status, headers, body = send(target, method, path)
        assert 400 <= status < 500, (method, path, status, body[:200])
        assert body.startswith(b"<html>") and headers["content-type"].startswith("text/html")


BAD_QUERIES = [
    ("/data/projects/P1/subjects?limit=abc", 400),
    ("/data/projects/P1/subjects?offset=abc", 400),
    ("/data/projects/P1/subjects?offset=-3&limit=-1", 400),
    ("/data/projects/P1/subjects?limit=1e999", 400),
    ("/data/experiments?date=13/45/2020", 400),
    ("/data/experiments?date=01/01/2020-bogus", 400),
    ("/data/projects/P1/subjects?limit=999999999999999999999999999999&offset=0", 200),
    ("/data/projects?format=%ZZ", 200),
    ("/data/projects?columns=%FF%FE,%00,xnat:/,xnat:subjectData/", 200),
    ("/data/projects/P1/subjects?%=%&&=&sortBy=%00&sortOrder=%FF", 200),
    ("/data/experiments?xsiType=%00&columns=xnat:mrScanData/,xnat:subjectData/%00", 200),
    ("/data/projects/P1?format=bogus", 200),
    ("/data/projects/P1/files?format=zip&structure=%00", 200),  # an unknown structure is the default one
]


@pytest.mark.parametrize("path,expected", BAD_QUERIES)
def test_bad_query_strings_never_fail_the_server(target: SimpleNamespace, path: str, expected: int) -> None:
    """Paging that is not a count is refused; other odd values are ignored or answered as XNAT does."""
    status, _, body = send(target, "GET", path)
    assert status == expected, (path, status, body[:200])


def _xxe(target: SimpleNamespace) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file://{target.secret}">]>\n'
            '<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" label="XXE1" group="&e;">'
            '<xnat:group>&e;</xnat:group></xnat:Subject>').encode()


def _bomb() -> bytes:
    levels = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{"".join(f"&l{i - 1};" for _ in range(10))}">' for i in range(1, 10)]
    return ('<?xml version="1.0"?>\n<!DOCTYPE bomb [' + "".join(levels) + ']>\n'
            '<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" label="BOMB"><xnat:group>&l9;</xnat:group>'
            '</xnat:Subject>').encode()


def _external_dtd(target: SimpleNamespace) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "file://{target.secret}">\n'
            '<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" label="DTD1"/>').encode()


@pytest.mark.parametrize("make", [_xxe, lambda t: _bomb(), _external_dtd,
                                  lambda t: b"<not-xml", lambda t: b"\xff\xfe\x00<", lambda t: b"<a>" * 100000])
@pytest.mark.parametrize("route", [f"{SUBJECTS}/HOSTILE", "/data/projects/P1/subjects/S1/experiments/HOSTILE",
                                   "/data/projects/P1"])
def test_hostile_xml_bodies_are_refused_and_never_expanded(target: SimpleNamespace, make, route: str) -> None:
    before = _snapshot(target)
    for content_type in ("text/xml", "application/xml"):
        started = time.monotonic()
        status, _, body = send(target, "PUT", f"{route}?xsiType=xnat:mrSessionData" if "experiments" in route
                               else route, {"Content-Type": content_type}, make(target))
        assert time.monotonic() - started < 5
        assert status == 422, (route, status, body[:300])
        assert CANARY.encode() not in body
    # the pyxnat way: a multipart part named data.xml
    boundary = "b0undary"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"data.xml\"; filename=\"data.xml\"\r\n"
                 f"Content-Type: text/xml\r\n\r\n").encode() + make(target) + f"\r\n--{boundary}--\r\n".encode()
    status, _, body = send(target, "PUT", f"{route}?allowDataDeletion=true",
                           {"Content-Type": f"multipart/form-data; boundary={boundary}"}, multipart)
    assert status == 422 and CANARY.encode() not in body
    assert _snapshot(target) == before
    for listing in (SUBJECTS, "/data/experiments", "/data/projects"):
        for fmt in ("json", "xml", "csv"):
            assert CANARY.encode() not in send(target, "GET", f"{listing}?format={fmt}")[2]


BROKEN_UPLOADS = [
    ({"Content-Type": "multipart/form-data"}, b"--x\r\nabc"),  # no boundary
    ({"Content-Type": "multipart/form-data; boundary=zzz"}, b"garbage without any boundary"),
    ({"Content-Type": "multipart/form-data; boundary=zzz"}, b"--zzz\r\nContent-Disposition: form-data\r\n\r\n"),
    ({"Content-Type": "multipart/form-data; boundary=zzz"},
     b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\ntruncated'),
    ({"Content-Type": "text/plain", "Content-Length": "0"}, b""),
]


@pytest.mark.parametrize("headers,body", BROKEN_UPLOADS)
def test_broken_upload_bodies_are_refused(target: SimpleNamespace, headers: dict[str, str], body: bytes) -> None:
    before = _snapshot(target)
    for method, path in (("PUT", "/data/projects/P1/resources/docs/files/new.txt"),
                         ("POST", "/data/projects/P1/resources/docs/files"),
                         ("POST", "/data/services/import?dest=/prearchive/projects/P1")):
        status, _, answer = send(target, method, path, dict(headers), body)
        assert 400 <= status < 500, (method, path, headers, status, answer[:200])
    assert _snapshot(target) == before


@pytest.mark.parametrize("spec,status", [("bytes=abc", 200), ("bytes=5-2", 200), ("bytes=999999-", 206),
                                         ("bytes=-0", 206), ("bytes=", 200), ("bytes=0-1,3-4", 501),
                                         ("lines=1-2", 200), ("\x01\x02", 200), ("bytes=2-5", 206)])
def test_range_headers(target: SimpleNamespace, spec: str, status: int) -> None:
    """As Restlet answers them: what does not parse is ignored, a range past the end is an empty 206
    (never 416), several ranges are 501."""
    code, headers, body = send(target, "GET", FILE, {"Range": spec})
    assert code == status, (spec, code)
    if status == 200:
        assert body == README and "content-range" not in headers
    elif status == 206 and spec == "bytes=2-5":
        assert body == README[2:6] and headers["content-range"] == f"bytes 2-5/{len(README)}"
    elif status == 206:
        assert body == b"" and headers["content-length"] == "0"
        assert headers["content-range"].endswith(f"/{len(README)}")


@pytest.mark.parametrize("authorization", [
    "Basic !!!not-base64", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer x", "Basic"])
def test_malformed_credentials_are_401(target: SimpleNamespace, authorization: str) -> None:
    status, headers, _ = send(target, "GET", "/data/projects", {"Authorization": authorization})
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="XNAT"'  # Spring's, realm = site ID


def test_odd_cookie_and_accept_values(target: SimpleNamespace) -> None:
    assert send(target, "GET", "/data/projects", {"Cookie": "JSESSIONID=\x7f; ;=;JSESSIONID"})[0] == 200
    for accept in ("garbage", "*/*;q=abc", ";;;", "text/html;level=1;q=0.5, */*;q=0.1"):
        for path in ("/data/projects", "/data/projects/P1", "/data/projects/P1/subjects/S1", FILE, "/data/prearchive"):
            status = send(target, "GET", path, {"Accept": accept})[0]
            assert status in (200, 406), (accept, path, status)


@pytest.mark.parametrize("line", [b"GARBAGE", b"GET", b"\x16\x03\x01\x02\x00"])
def test_a_malformed_request_line_is_400_with_one_log_line_and_no_traceback(
        target: SimpleNamespace, line: bytes, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="xnatfs.emulator.server")
    with socket.create_connection((target.host, target.port), timeout=10) as raw:
        raw.sendall(line + b"\r\n\r\n")
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    # no parsable request line means no HTTP version: the stdlib answers as to HTTP/0.9, the page alone
    assert b"Error code: 400" in answer, answer[:300]
    time.sleep(0.2)  # the handler thread logs after answering
    refused = [r for r in caplog.records if "Refused a request" in r.getMessage()]
    assert len(refused) == 1
    assert "Traceback" not in capfd.readouterr().err
