"""Issue 18, rows 1 and 8: names a hostile server chooses never make the library write outside a target.

``File.download(dir)`` puts the file at ``dir / Name`` with the server's ``Name``, and ``download_dir``
extracts members the server named: both go through :func:`xnatfs.localpaths.safe_join`, which refuses
``..``, absolute paths, NUL and over-long names, and a zip whose members cannot all be made (``x`` and
``x/y.txt``), as an :class:`~xnatfs.errors.UnsafeLocalPath` before anything is written.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import xnatfs
from xnatfs.errors import UnsafeLocalPath, XNATError
from xnatfs.model.connect import Connection

from hostile import HostileServer, project_routes, resultset, xnat_routes

pytestmark = pytest.mark.integration

PASSWORD = "hostile-pa55word"
BODY = b"escaped bytes\n"
FILE_URI = "/data/projects/P/resources/r/files/f.bin"


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer(xnat_routes("admin", PASSWORD)) as hostile:
        yield hostile


def connect(server: HostileServer) -> Connection:
    return xnatfs.connect(server.url, "admin", PASSWORD, load_schemas=False, timeout=5.0)


def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """``(outside, target)``: the target is two levels down, so ``../../x`` lands in ``outside``."""
    outside = tmp_path / "outside"
    target = outside / "a" / "target"
    target.mkdir(parents=True)
    return outside, target


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", ["../../escaped.txt", "/ABSOLUTE/escaped.txt", "sub/../../../escaped.txt",
                                  "nul\0.txt", "x" * 300, "d/" * 2100 + "f"])
def test_a_hostile_file_name_is_refused_before_anything_is_written(server: HostileServer, tmp_path: Path,
                                                                  name: str) -> None:
    outside, target = sandbox(tmp_path)
    absolute = outside / "abs"
    name = name.replace("/ABSOLUTE", str(absolute))
    row = {"Name": name, "Size": str(len(BODY)), "URI": FILE_URI, "digest": hashlib.md5(BODY).hexdigest()}
    server.routes.update(project_routes())
    server.route("GET", "/data/projects/P/resources/r/files", lambda ex: ex.reply(200, resultset([row])))
    server.route("GET", FILE_URI, lambda ex: ex.reply(200, BODY))
    with connect(server) as connection:
        [remote] = list(connection.projects["P"].resources["r"].files)
        with pytest.raises(UnsafeLocalPath, match="Refused the server's file name") as info:
            remote.download(target)
    assert isinstance(info.value, XNATError)
    assert everything_under(outside) == ["a", "a/target"]  # nothing, anywhere
    assert server.requests_to(FILE_URI) == []  # refused before the download began


def test_an_ordinary_file_name_still_downloads(server: HostileServer, tmp_path: Path) -> None:
    _, target = sandbox(tmp_path)
    row = {"Name": "ok.txt", "Size": str(len(BODY)), "URI": FILE_URI, "digest": hashlib.md5(BODY).hexdigest()}
    server.routes.update(project_routes())
    server.route("GET", "/data/projects/P/resources/r/files", lambda ex: ex.reply(200, resultset([row])))
    server.route("GET", FILE_URI, lambda ex: ex.reply(200, BODY))
    with connect(server) as connection:
        [remote] = list(connection.projects["P"].resources["r"].files)
        assert remote.download(target) == (target / "ok.txt").resolve()
    assert (target / "ok.txt").read_bytes() == BODY


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


@pytest.mark.parametrize("members", [
    [("S/1.dcm", b"DICM"), ("S/x", b"a file"), ("S/x/y.txt", b"under the file")],
    [("S/1.dcm", b"DICM"), ("S/" + "n" * 5000, b"long")],
    [("S/1.dcm", b"DICM"), ("S/" + "d/" * 2100 + "f", b"deep")],
], ids=["file-then-folder", "5000-char-name", "path-over-4096"])
def test_a_zip_whose_members_cannot_all_be_written_is_refused_before_any_is(server: HostileServer, tmp_path: Path,
                                                                            members: list[tuple[str, bytes]]) -> None:
    outside, target = sandbox(tmp_path)
    archive = zip_of(members)
    server.routes.update(project_routes())
    server.route("GET", "/data/projects/P/files",
                 lambda ex: ex.reply(200, archive, {"Content-Type": "application/zip"}))
    with connect(server) as connection, pytest.raises(UnsafeLocalPath, match="nothing was extracted"):
        connection.projects["P"].download_dir(target)
    assert everything_under(outside) == ["a", "a/target"]  # not even S/1.dcm, nor the spooled zip


def test_a_zip_member_where_a_file_already_is_on_disk_is_refused_first(server: HostileServer,
                                                                      tmp_path: Path) -> None:
    _, target = sandbox(tmp_path)
    (target / "S").write_bytes(b"mine")
    archive = zip_of([("A/1.dcm", b"DICM"), ("S/y.txt", b"needs S as a folder")])
    server.routes.update(project_routes())
    server.route("GET", "/data/projects/P/files", lambda ex: ex.reply(200, archive, {"Content-Type": "application/zip"}))
    with connect(server) as connection, pytest.raises(UnsafeLocalPath, match="must be a folder"):
        connection.projects["P"].download_dir(target)
    assert everything_under(target) == ["S"] and (target / "S").read_bytes() == b"mine"


