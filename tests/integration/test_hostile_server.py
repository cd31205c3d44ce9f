"""A hostile server against the client library: XXE and entity bombs in the XSD at connect, hostile
zips for ``download_dir``, HTML login pages with 200, lying ``Content-Length``s and endless bodies,
and redirects to another origin. Every test talks only to servers it starts on 127.0.0.1.
"""

from __future__ import annotations

import io
import logging
import stat
import struct
import time
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import xnatfs
from xnatfs.errors import ChecksumMismatch, SchemaError, ServerError, TransportError
from xnatfs.model.connect import Connection
from xnatfs.settings import MiB, Settings

from rss_sampler import PeakRSS
from hostile import (
    HTML_LOGIN_PAGE,
    TOKEN,
    Exchange,
    HostileServer,
    has_session,
    project_routes,
    xnat_routes,
)

pytestmark = pytest.mark.integration

PASSWORD = "hostile-pa55word"
MARKER = "SECRET-MARKER-7f3a9c"
XNAT_XSD = Path(xnatfs.__file__).parent / "emulator" / "schemas" / "xnat" / "xnat.xsd"
#: What a hostile answer may cost this process in memory, at most.
RSS_BUDGET = 64 * MiB


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer(xnat_routes("admin", PASSWORD)) as hostile:
        yield hostile


def connect(server: HostileServer, **kw: object) -> Connection:
    kw.setdefault("load_schemas", False)
    kw.setdefault("timeout", 5.0)
    return xnatfs.connect(server.url, "admin", PASSWORD, **kw)  # type: ignore[arg-type]


def everything_said(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


# -- XML: XXE and entity bombs in the schemas read at connect --------------------------------------------

@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(MARKER)
    return path


def xxe_schema(secret: Path) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE xs:schema [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
            '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://nrg.xnat.org/xnat">'
            '<xs:complexType name="thing"><xs:annotation><xs:documentation>&xxe;</xs:documentation>'
            '</xs:annotation></xs:complexType></xs:schema>').encode()


def billion_laughs() -> bytes:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE xs:schema [{entities}]>'
            '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:annotation>'
            '<xs:documentation>&lol9;</xs:documentation></xs:annotation></xs:schema>').encode()


@pytest.mark.parametrize("payload", ["xxe", "billion-laughs"])
def test_a_hostile_core_schema_fails_connect_cleanly(server: HostileServer, secret_file: Path, payload: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    body = xxe_schema(secret_file) if payload == "xxe" else billion_laughs()
    server.route("GET", "/xapi/schemas", lambda ex: ex.reply(200, ["xnat"]))
    server.route("GET", "/xapi/schemas/xnat", lambda ex: ex.reply(200, body, {"Content-Type": "text/xml"}))
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), PeakRSS() as rss, pytest.raises(SchemaError) as info:
        connect(server, load_schemas=True)
    assert time.monotonic() - started < 2.0
    assert rss.growth < RSS_BUDGET
    assert "DOCTYPE" in caplog.text  # the warning says why the schema was refused
    assert MARKER not in everything_said(info.value) + caplog.text
    assert server.requests_to("/data/JSESSION")[-1].method == "DELETE"  # the half-open session was closed


def test_a_hostile_plugin_schema_is_skipped_and_never_expanded(server: HostileServer, secret_file: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    server.route("GET", "/xapi/schemas", lambda ex: ex.reply(200, ["xnat", "evil"]))
    server.route("GET", "/xapi/schemas/xnat", lambda ex: ex.reply(200, XNAT_XSD.read_bytes()))
    server.route("GET", "/xapi/schemas/evil", lambda ex: ex.reply(200, xxe_schema(secret_file)))
    with caplog.at_level(logging.WARNING), connect(server, load_schemas=True) as connection:
        assert connection.classes is not None
        docs = "".join(str(getattr(cls, "__doc__", "")) for cls in vars(connection.classes).values())
        assert "MrSessionData" in dir(connection.classes)
    assert "Skipping schema document 'evil'" in caplog.text
    assert MARKER not in docs + caplog.text


# -- hostile zips for download_dir ------------------------------------------------------------------------

def zip_of(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buffer.getvalue()


def symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def with_declared_sizes(data: bytes, size: int) -> bytes:
    """``data`` with every central-directory entry claiming ``size`` uncompressed bytes (zip bomb shapes)."""
    patched = bytearray(data)
    at = patched.find(b"PK\x01\x02")
    while at >= 0:
        struct.pack_into("<I", patched, at + 24, size)
        at = patched.find(b"PK\x01\x02", at + 4)
    return bytes(patched)


def hostile_zips(outside: Path) -> dict[str, bytes]:
    good = ("SESSION/scans/1/resources/DICOM/files/1.dcm", b"DICM")
    many = [(zipfile.ZipInfo(f"SESSION/{i}.dcm"), b"x") for i in range(4096)]
    return {
        "dot-dot": zip_of([good, ("SESSION/../../outside/dotdot.txt", b"escaped")]),
        "absolute": zip_of([good, (zipfile.ZipInfo(str(outside / "absolute.txt")), b"escaped")]),
        "backslash": zip_of([good, ("..\\outside\\backslash.txt", b"escaped")]),
        "symlink": zip_of([good, (symlink("SESSION/link", str(outside)), b""),
                           ("SESSION/link/through-link.txt", b"escaped")]),
        # 4096 members claiming 4 GiB each: 16 TiB, more than any disk; their data is 1 byte each.
        "declared-bomb": with_declared_sizes(zip_of(many), 0xFFFFFFFE),
        # 8 MiB of zeros declared as 10 bytes: zipfile stops at 10 and the CRC does not match.
        "understated": with_declared_sizes(zip_of([("SESSION/zeros.dcm", bytes(8 * MiB))]), 10),
    }


@pytest.mark.parametrize("case", ["dot-dot", "absolute", "backslash", "symlink", "declared-bomb", "understated"])
def test_a_hostile_zip_is_refused_and_nothing_lands_outside(server: HostileServer, tmp_path: Path, case: str) -> None:
    sandbox = tmp_path / "sandbox"
    outside, target = sandbox / "outside", sandbox / "target"
    outside.mkdir(parents=True)
    archive = hostile_zips(outside)[case]
    server.routes.update(project_routes())
    server.route("GET", "/data/projects/P/files", lambda ex: ex.reply(200, archive, {"Content-Type": "application/zip"}))
    with connect(server) as connection, PeakRSS() as rss:
        with pytest.raises(ServerError) as info:
            connection.projects["P"].download_dir(target)
    assert rss.growth < RSS_BUDGET
    assert ("nothing was extracted" in str(info.value)) or case == "understated", str(info.value)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in sandbox.iterdir()) == ["outside", "target"]
    leftovers = [p.relative_to(target).as_posix() for p in target.rglob("*") if not p.is_dir()]
    assert leftovers == []  # no partial member, no spooled zip


def test_a_clean_zip_from_the_same_server_extracts(server: HostileServer, tmp_path: Path) -> None:
    archive = zip_of([("SESSION/scans/1/1.dcm", b"DICM-1"), ("SESSION/scans/1/2.dcm", b"DICM-2")])
    server.routes.update(project_routes())
    server.route("GET", "/data/projects/P/files", lambda ex: ex.reply(200, archive, {"Content-Type": "application/zip"}))
    with connect(server) as connection:
        connection.projects["P"].download_dir(tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.dcm")) == [
        "SESSION/scans/1/1.dcm", "SESSION/scans/1/2.dcm"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["SESSION"]


# -- an HTML login page with 200 ------------------------------------------------------------------------

def login_page(ex: Exchange) -> None:
    ex.reply(200, HTML_LOGIN_PAGE, {"Content-Type": "text/html;charset=UTF-8"})


def test_a_login_page_instead_of_the_login_answer_is_a_clear_error() -> None:
    with HostileServer(fallback=login_page) as sso:
        with pytest.raises(ServerError, match="HTML page") as info:
            xnatfs.connect(sso.url, "admin", PASSWORD, load_schemas=False, timeout=5)
        with pytest.raises(ServerError, match="HTML page"):
            xnatfs.connect(sso.url, load_schemas=False, timeout=5)  # anonymous
    assert PASSWORD not in everything_said(info.value)


def test_a_login_page_for_data_relogs_in_once_then_fails_clearly(server: HostileServer) -> None:
    server.route("GET", "/data/projects", login_page)
    with connect(server) as connection, pytest.raises(ServerError, match="HTML page where data was expected"):
        connection.projects.keys()
    assert [r.method for r in server.requests_to("/data/JSESSION")].count("POST") == 2  # one re-login, no loop


@pytest.mark.parametrize("how", ["open", "download", "download_dir"])
def test_a_login_page_instead_of_file_bytes_is_an_error_not_data(server: HostileServer, tmp_path: Path,
                                                                  how: str) -> None:
    server.routes.update(project_routes({"f.bin": 1_000_000}))
    server.route("GET", "/data/projects/P/resources/r/files/f.bin", login_page)
    server.route("GET", "/data/projects/P/resources/r/files", lambda ex: (
        project_routes({"f.bin": 1_000_000})[("GET", "/data/projects/P/resources/r/files")](ex)
        if "format=json" in ex.request.query else login_page(ex)))
    with connect(server) as connection:
        resource = connection.projects["P"].resources["r"]
        with pytest.raises((ServerError, ChecksumMismatch), match="login page") as info:
            if how == "open":
                resource.files["f.bin"].open().read(100)
            elif how == "download":
                resource.files["f.bin"].download(tmp_path / "f.bin")
            else:
                resource.download_dir(tmp_path / "dir")
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
    assert not list((tmp_path / "dir").rglob("*")) if how == "download_dir" else True
    assert b"<html" not in str(info.value).encode()[:40]


# -- Content-Length lies and endless bodies -------------------------------------------------------------

def announces(length: int, then: str = "stall", body: bytes = b'{"ResultSet": {"Result": [') -> object:
    def route(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "application/json", "Content-Length": str(length)})
        ex.write(body)
        if then == "endless":
            ex.endless(cap=256 * MiB)
        elif then == "stall":
            ex.stall(10)
        else:
            ex.close()
    return route


def endless_without_length(status: int = 200) -> object:
    def route(ex: Exchange) -> None:
        ex.head(status, {"Content-Type": "application/json", "Connection": "close"})
        ex.endless(cap=256 * MiB)
    return route


def test_a_huge_announced_length_is_refused_before_reading(server: HostileServer) -> None:
    server.route("GET", "/data/projects", announces(10 * 1024 ** 3, "endless"))
    started = time.monotonic()
    with connect(server) as connection, PeakRSS() as rss, pytest.raises(ServerError, match="announced"):
        connection.projects.keys()
    assert time.monotonic() - started < 2.0 and rss.growth < RSS_BUDGET


def test_a_short_body_under_a_long_length_is_a_transport_error(server: HostileServer) -> None:
    server.route("GET", "/data/projects", announces(1_000_000, "close"))
    started = time.monotonic()
    with connect(server) as connection, pytest.raises(TransportError):
        connection.projects.keys()
    assert time.monotonic() - started < 2.0


def test_an_endless_document_stops_at_the_document_limit(server: HostileServer) -> None:
    server.route("GET", "/data/projects", endless_without_length())
    with connect(server, settings=Settings(max_document_size=4 * MiB)) as connection, PeakRSS() as rss:
        with pytest.raises(ServerError, match="larger than"):
            connection.projects.keys()
    assert rss.growth < RSS_BUDGET
    assert server.sent["/data/projects"] < 64 * MiB


@pytest.mark.parametrize("status", [500, 503])
def test_an_endless_error_body_is_read_only_for_its_excerpt(server: HostileServer, status: int) -> None:
    # 503 is retried: urllib3 would read ("drain") each retried answer whole before the next try.
    server.route("GET", "/data/projects", endless_without_length(status))
    started = time.monotonic()
    with connect(server) as connection, PeakRSS() as rss, pytest.raises(ServerError) as info:
        connection.projects.keys()
    assert info.value.status == status
    assert rss.growth < RSS_BUDGET and time.monotonic() - started < 5.0
    assert server.sent["/data/projects"] < 64 * MiB * len(server.requests_to("/data/projects"))


def test_absurdly_nested_json_is_a_server_error(server: HostileServer) -> None:
    server.route("GET", "/data/projects", lambda ex: ex.reply(200, b"[" * 200_000, {"Content-Type": "application/json"}))
    with connect(server) as connection, pytest.raises(ServerError, match="JSON"):
        connection.projects.keys()


FILE = "/data/projects/P/resources/r/files/f.bin"
SIZE = 1_000_000


def range_with_lying_length(ex: Exchange) -> None:
    ex.head(206, {"Content-Range": f"bytes 0-{128 * 1024 - 1}/{SIZE}", "Content-Length": str(10 ** 12)})
    ex.endless(cap=256 * MiB)


def whole_with_lying_length(ex: Exchange) -> None:
    ex.head(200, {"Content-Length": str(10 ** 12)})
    ex.endless(cap=256 * MiB)


def whole_without_length(ex: Exchange) -> None:
    ex.head(200, {"Connection": "close"})
    ex.endless(cap=256 * MiB)


@pytest.mark.parametrize("route", [range_with_lying_length, whole_with_lying_length])
def test_a_file_read_with_a_lying_length_is_an_error(server: HostileServer, route: object) -> None:
    server.routes.update(project_routes({"f.bin": SIZE}))
    server.route("GET", FILE, route)  # type: ignore[arg-type]
    with connect(server) as connection, PeakRSS() as rss:
        with pytest.raises(ServerError, match="Content-Length|holds 1000000000000 bytes"):
            connection.projects["P"].resources["r"].files["f.bin"].open().read(4096)
    assert rss.growth < RSS_BUDGET
    assert server.sent[FILE] < 64 * MiB


def test_an_endless_file_body_yields_exactly_the_file(server: HostileServer) -> None:
    server.routes.update(project_routes({"f.bin": SIZE}))
    server.route("GET", FILE, whole_without_length)
    with connect(server) as connection, PeakRSS() as rss:
        with connection.projects["P"].resources["r"].files["f.bin"].open() as handle:
            data = handle.read()
    assert data == b"x" * SIZE
    assert rss.growth < RSS_BUDGET
    assert server.sent[FILE] < 64 * MiB


def test_an_endless_download_stops_at_the_listed_size(server: HostileServer, tmp_path: Path) -> None:
    server.routes.update(project_routes({"f.bin": SIZE}))
    server.route("GET", FILE, whole_without_length)
    started = time.monotonic()
    with connect(server) as connection, pytest.raises(ChecksumMismatch, match="more than"):
        connection.projects["P"].resources["r"].files["f.bin"].download(tmp_path / "f.bin")
    assert time.monotonic() - started < 3.0
    assert list(tmp_path.iterdir()) == []
    assert server.sent[FILE] < 64 * MiB


# -- redirects to another origin ------------------------------------------------------------------------

@pytest.fixture
def elsewhere() -> Iterator[HostileServer]:
    """Another server (another port of 127.0.0.1) that records what reaches it."""
    with HostileServer(fallback=lambda ex: ex.reply(200, {"ResultSet": {"Result": []}})) as other:
        yield other


def redirect_to(url: str, status: int = 302) -> object:
    return lambda ex: ex.reply(status, b"", {"Location": url})


def credentials_in(requests: list) -> list[str]:  # type: ignore[type-arg]
    return [name for r in requests for name, value in r.headers.items()
            if name.lower() in ("authorization", "cookie") or TOKEN in value or PASSWORD in value]


@pytest.mark.parametrize("where", ["port", "host"])
def test_a_redirect_to_another_origin_is_not_followed(server: HostileServer, elsewhere: HostileServer,
                                                      where: str) -> None:
    # "host": the same port under another name (localhost) — if followed, it would come back to `server`.
    target = (f"{elsewhere.url}/data/projects" if where == "port"
              else f"http://localhost:{server.port}/data/elsewhere")
    server.route("GET", "/data/projects", redirect_to(target))
    with connect(server) as connection, pytest.raises(ServerError, match="redirected") as info:
        connection.projects.keys()
    assert "outside" in str(info.value) and TOKEN not in str(info.value)
    assert elsewhere.received == [] and server.requests_to("/data/elsewhere") == []


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirected_login_sends_nothing_elsewhere(server: HostileServer, elsewhere: HostileServer,
                                                    status: int) -> None:
    server.route("POST", "/data/JSESSION", redirect_to(f"{elsewhere.url}/data/JSESSION", status))
    with pytest.raises(ServerError, match="redirected") as info:
        connect(server)
    assert elsewhere.received == [] and credentials_in(elsewhere.received) == []
    assert PASSWORD not in everything_said(info.value)


def test_a_redirected_file_read_sends_nothing_elsewhere(server: HostileServer, elsewhere: HostileServer) -> None:
    server.routes.update(project_routes({"f.bin": SIZE}))
    server.route("GET", FILE, redirect_to(f"{elsewhere.url}{FILE}", 307))
    with connect(server) as connection, pytest.raises(ServerError, match="redirected"):
        connection.projects["P"].resources["r"].files["f.bin"].open().read(10)
    assert elsewhere.received == []


def test_a_same_origin_redirect_is_followed_with_the_session(server: HostileServer) -> None:
    server.route("GET", "/data/projects", redirect_to(f"{server.url}/data/moved", 302))
    server.route("GET", "/data/moved", lambda ex: ex.reply(200, {"ResultSet": {"Result": [{"ID": "P"}]}})
                 if has_session(ex) else ex.reply(401, b""))
    with connect(server) as connection:
        assert connection.projects.keys() == ["P"]


# -- Retry-After: a server cannot make a call wait for hours -------------------------------------------

@pytest.mark.parametrize("retry_after", ["21600", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_a_long_retry_after_is_not_waited_for(server: HostileServer, retry_after: str) -> None:
    server.route("GET", "/data/projects", lambda ex: ex.reply(503, b"<html><h3>maintenance</h3></html>",
                                                              {"Retry-After": retry_after}))
    started = time.monotonic()
    with connect(server) as connection, pytest.raises(ServerError, match="maintenance") as info:
        connection.projects.keys()
    assert info.value.status == 503
    assert time.monotonic() - started < 2.0
    assert len(server.requests_to("/data/projects")) == 1


def test_a_short_retry_after_is_honoured(server: HostileServer) -> None:
    server.route("GET", "/data/projects", lambda ex: ex.reply(503, b"busy", {"Retry-After": "0"}))
    with connect(server) as connection, pytest.raises(ServerError):
        connection.projects.keys()
    assert len(server.requests_to("/data/projects")) == 1 + connection.session.settings.retry.total
