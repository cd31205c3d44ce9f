"""Local halves of transfers: zip extraction cannot escape, upload sources, import parameters."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from xnatfs.errors import ServerError, UploadError
from xnatfs.model.services import content_type_for, destination_path
from xnatfs.model.zipcheck import check_import_zip
from xnatfs.model.transfer import ProgressReader, open_upload_source, safe_extract

pytestmark = pytest.mark.unit


def make_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs.txt", "ok/../../escape2.txt", "C:/win.txt", None])
def test_safe_extract_refuses_a_zip_with_an_escaping_member_whole(tmp_path: Path, bad: str | None) -> None:
    members = {"ok/a.txt": b"a", "ok\\b.txt": b"b"}
    if bad:
        members[bad] = b"x"
    archive = make_zip(tmp_path / "evil.zip", members, symlink=None if bad else "ok/link")
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ServerError, match="nothing was extracted"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "escape2.txt").exists()


def test_safe_extract_writes_a_clean_zip(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "good.zip", {"ok/a.txt": b"a", "ok\\b.txt": b"b"})
    target = tmp_path / "out"
    written = safe_extract(archive, target)
    assert sorted(p.relative_to(target).as_posix() for p in written) == ["ok/a.txt", "ok/b.txt"]
    assert (target / "ok" / "b.txt").read_bytes() == b"b"


def test_progress_reader_reports_and_rewinds() -> None:
    seen: list[tuple[int, int | None]] = []
    raw = io.BytesIO(b"xx" + b"0123456789")
    raw.seek(2)
    reader = ProgressReader(raw, lambda done, total: seen.append((done, total)))
    assert len(reader) == 10
    assert reader.read(4) == b"0123" and reader.read() == b"456789"
    assert seen == [(4, 10), (10, 10)]
    reader.seek(0)
    assert reader.read() == b"0123456789"


def test_non_seekable_sources_are_spooled(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = io.BytesIO(b"pipe data")

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            chunk = self.data.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    handle, owned = open_upload_source(Pipe())
    assert owned and handle.seekable() and handle.read() == b"pipe data"
    handle.close()
    with pytest.raises(UploadError):
        open_upload_source(tmp_path / "missing.zip")


def test_a_truncated_zip_is_refused_before_upload(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"1.dcm": b"x" * 1000})
    data = archive.read_bytes()
    handle = io.BytesIO(data)
    assert check_import_zip(handle, "a.zip", require_dicom=False) == (1, 0)
    assert handle.tell() == 0  # left where it was, for the upload
    with pytest.raises(UploadError) as info:
        check_import_zip(io.BytesIO(data[:-30]), "a.zip", require_dicom=False)
    assert "copy it again" in str(info.value)
    with pytest.raises(UploadError):
        check_import_zip(io.BytesIO(b"not a zip at all"), "b.zip")
    with pytest.raises(UploadError, match="no DICOM"):
        check_import_zip(io.BytesIO(data), "a.zip")


@pytest.mark.parametrize(("name", "head", "expected"), [
    ("a.zip", b"PK\x03\x04", "application/zip"), ("a.tar", b"xxxx", "application/x-tar"),
    ("a.tar.gz", b"\x1f\x8b..", "application/x-gtar"), ("upload", b"\x1f\x8b..", "application/x-gtar"),
    ("upload", b"PK\x03\x04", "application/zip"),
])
def test_import_content_type(name: str, head: bytes, expected: str) -> None:
    assert content_type_for(name, head) == expected


def test_import_destinations() -> None:
    assert destination_path("prearchive", None, None, None) == "/prearchive"
    assert destination_path("prearchive", "P 1", "S", "E") == "/prearchive/projects/P%201"
    assert destination_path("archive", "P", "S", "E") == "/archive/projects/P/subjects/S/experiments/E"
    assert destination_path("/archive/projects/X", None, None, None) == "/archive/projects/X"
    with pytest.raises(ValueError):
        destination_path("archive", None, None, None)
    with pytest.raises(ValueError):
        destination_path("elsewhere", "P", None, None)
