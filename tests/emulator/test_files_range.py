"""Range requests under the ``--rfc-range`` switch (RFC 9110: clamped, 416), the no_range fault, and
memory while large files stream (spec §13.2, DESIGN §2). XNAT's own (Restlet's) Range behaviour, the
emulator's default, is tested in ``test_xnat_wire.py``."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import requests

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
BIG = 200 * 1024 * 1024
#: (offset, bytes) written into the otherwise sparse (zero) big file, so slices can be checked.
MARKS = {0: b"HEAD", 1234567: b"middle", BIG - 4: b"TAIL"}
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def module_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """This module's emulator answers ranges as RFC 9110 says (the ``http_range`` switch)."""
    with EmulatorServer(tmp_path_factory.mktemp("xnat-rfc-range"), http_range=True) as server:
        yield server


@pytest.fixture(scope="module")
def archive(module_emulator: EmulatorServer, module_http: requests.Session) -> SimpleNamespace:
    server = module_emulator
    store = server.store
    resource = store.create_resource(store.create_project("P"), "R")
    store.add_file(resource.id, "data.bin", DATA)
    fd, tmp = tempfile.mkstemp(dir=store.tmp_dir)
    with os.fdopen(fd, "wb") as out:  # sparse: quick to write, 200 MB to read
        out.truncate(BIG)
        for offset, mark in MARKS.items():
            out.seek(offset)
            out.write(mark)
    store.add_file(resource.id, "big.bin", Path(tmp), move=True, md5="not-checked-here")
    return SimpleNamespace(server=server, http=module_http, url=f"{server.url}/data/projects/P/resources/R/files")


def get_range(a: SimpleNamespace, spec: str, name: str = "data.bin") -> requests.Response:
    return a.http.get(f"{a.url}/{name}", headers={"Range": spec}, timeout=30)


@pytest.mark.parametrize(("spec", "start", "end"), [
    ("bytes=0-99", 0, 99),          # first bytes
    ("bytes=5000-5099", 5000, 5099),  # middle
    ("bytes=-100", len(DATA) - 100, len(DATA) - 1),  # suffix
    ("bytes=10000-", 10000, len(DATA) - 1),  # open-ended
    ("bytes=10200-99999", 10200, len(DATA) - 1),  # end past the file is clipped
])
def test_single_range_is_206_with_content_range(archive: SimpleNamespace, spec: str, start: int, end: int) -> None:
    response = get_range(archive, spec)
    assert response.status_code == 206
    assert response.content == DATA[start:end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["Content-Length"] == str(end - start + 1)
    assert response.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("spec", ["bytes=20000-", "bytes=20000-20010", "bytes=abc", "bytes=5-2", "bytes=-0"])
def test_unsatisfiable_or_invalid_byte_ranges_are_416(archive: SimpleNamespace, spec: str) -> None:
    response = get_range(archive, spec)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert response.text.startswith("<html>")


@pytest.mark.parametrize("spec", ["items=0-5", "bytes=0-1,5-6", "none"])
def test_other_units_and_multiple_ranges_are_ignored(archive: SimpleNamespace, spec: str) -> None:
    """RFC 9110 §14.2: a server MUST ignore a range unit it does not know; the emulator does not
    build multipart/byteranges, so it ignores a multi-range request as XNAT ignores every Range."""
    response = get_range(archive, spec)
    assert response.status_code == 200 and response.content == DATA
    assert "Content-Range" not in response.headers


def test_no_206_without_range_and_head_advertises_ranges(archive: SimpleNamespace) -> None:
    response = archive.http.get(f"{archive.url}/data.bin", timeout=10)
    assert response.status_code == 200 and response.content == DATA
    assert response.headers["Accept-Ranges"] == "bytes" and "Content-Range" not in response.headers


def test_no_range_fault_serves_the_whole_file(archive: SimpleNamespace) -> None:
    archive.server.set_faults(no_range=True)
    try:
        response = get_range(archive, "bytes=0-99")
        assert response.status_code == 200 and response.content == DATA
        assert "Accept-Ranges" not in response.headers and "Content-Range" not in response.headers
        assert get_range(archive, "bytes=abc").status_code == 200  # ignored, not refused
        head = archive.http.head(f"{archive.url}/data.bin", timeout=10)
        assert "Accept-Ranges" not in head.headers and head.headers["Content-Length"] == str(len(DATA))
    finally:
        archive.server.set_faults(no_range=False)
    assert get_range(archive, "bytes=0-99").status_code == 206


def _rss() -> int:
    return psutil.Process().memory_info().rss


def test_large_file_streams_in_pieces_and_whole_with_bounded_memory(archive: SimpleNamespace) -> None:
    """200 MB through the in-process server: by Range pieces, whole, and zipped; RSS must stay flat."""
    before = _rss()
    peak = before
    head = archive.http.head(f"{archive.url}/big.bin", timeout=10)
    assert head.headers["Content-Length"] == str(BIG)

    piece = 4 * MiB
    digest_pieces = hashlib.md5()
    for start in range(0, BIG, piece):
        response = get_range(archive, f"bytes={start}-{min(start + piece, BIG) - 1}", "big.bin")
        assert response.status_code == 206 and len(response.content) == min(piece, BIG - start)
        digest_pieces.update(response.content)
        del response
        peak = max(peak, _rss())

    digest_whole = hashlib.md5()
    received = 0
    with archive.http.get(f"{archive.url}/big.bin", stream=True, timeout=60) as response:
        assert response.status_code == 200
        for chunk in response.iter_content(MiB):
            digest_whole.update(chunk)
            received += len(chunk)
            peak = max(peak, _rss())
    assert received == BIG
    assert digest_whole.hexdigest() == digest_pieces.hexdigest()

    marks = {start: get_range(archive, f"bytes={start}-{start + len(m) - 1}", "big.bin").content
             for start, m in MARKS.items()}
    assert marks == MARKS

    zipped = 0
    with archive.http.get(f"{archive.url}", params={"format": "zip"}, stream=True, timeout=60) as response:
        assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
        for chunk in response.iter_content(MiB):
            zipped += len(chunk)
            peak = max(peak, _rss())
    assert zipped > BIG
    growth = (peak - before) / MiB
    # the client holds one 4 MiB piece (twice while requests joins it); the server streams in 256 KiB / 1 MiB chunks
    print(f"RSS growth while streaming 200 MB: {growth:.1f} MiB")
    assert growth < 50, f"RSS grew by {growth:.1f} MiB"


def test_zip_of_the_large_file_is_valid(archive: SimpleNamespace, tmp_path: Path) -> None:
    target = tmp_path / "all.zip"
    with archive.http.get(archive.url, params={"format": "zip"}, stream=True, timeout=60) as response:
        with open(target, "wb") as out:
            for chunk in response.iter_content(MiB):
                out.write(chunk)
    with zipfile.ZipFile(target) as zf:
        info = zf.getinfo("P/resources/R/files/big.bin")
        assert info.file_size == BIG
        with zf.open(info) as member:
            assert member.read(4) == b"HEAD"
        assert zf.read("P/resources/R/files/data.bin") == DATA
