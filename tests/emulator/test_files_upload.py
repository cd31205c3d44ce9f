"""Uploads and file deletes over real HTTP: raw, multipart, nested, overwrite, extract, refusals (spec §13.4–5)."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import requests

from xnatfs.emulator.dicomgen import make_zip
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

MiB = 1024 * 1024


@pytest.fixture
def site(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> SimpleNamespace:
    store = fresh_emulator.store
    store.create_project("P")
    subject = store.create_subject("P", "S")
    session = store.create_experiment("P", subject.id, "E")
    store.create_scan(session.id, "1", fields={"type": "T1"})
    return SimpleNamespace(server=fresh_emulator, store=store, http=fresh_http, session=session,
                           base=f"{fresh_emulator.url}/data/experiments/{session.id}/scans/1/resources")


def rows_by_path(site: SimpleNamespace, resource: str) -> dict[str, dict]:
    response = site.http.get(f"{site.base}/{resource}/files", params={"format": "json"}, timeout=10)
    assert response.status_code == 200
    return {r["URI"].split("/files/", 1)[1]: r for r in response.json()["ResultSet"]["Result"]}


def assert_round_trip(site: SimpleNamespace, resource: str, path: str, data: bytes) -> None:
    downloaded = site.http.get(f"{site.base}/{resource}/files/{path}", timeout=10)
    assert downloaded.status_code == 200 and downloaded.content == data
    row = rows_by_path(site, resource)[path]
    assert row["digest"] == hashlib.md5(downloaded.content).hexdigest() == hashlib.md5(data).hexdigest()
    assert row["Size"] == str(len(data))


def tree_outside_data(root: Path) -> set[str]:
    return {p.name for p in root.parent.iterdir()}


def test_raw_put_xnatpy_style_creates_resource_and_round_trips(site: SimpleNamespace) -> None:
    data = os.urandom(100_000)
    response = site.http.put(f"{site.base}/DICOM/files/series/a/1.dcm", data=data,
                             params={"format": "DICOM", "content": "T1_RAW", "tags": "x"},
                             headers={"Content-Type": "application/octet-stream"}, timeout=10)
    assert response.status_code == 200 and response.text == ""
    assert_round_trip(site, "DICOM", "series/a/1.dcm", data)
    row = rows_by_path(site, "DICOM")["series/a/1.dcm"]
    assert (row["Name"], row["file_format"], row["file_content"], row["file_tags"]) == ("1.dcm", "DICOM", "T1_RAW", "x")
    resources = site.http.get(f"{site.base}", timeout=10).json()["ResultSet"]["Result"]
    assert [(r["label"], r["file_count"], r["format"]) for r in resources] == [("DICOM", "1", "DICOM")]


def test_raw_post_pyxnat_style_inbody_to_numeric_resource_id(site: SimpleNamespace) -> None:
    assert site.http.put(f"{site.base}/NIFTI", timeout=10).status_code == 200
    rid = site.http.get(site.base, timeout=10).json()["ResultSet"]["Result"][0]["xnat_abstractresource_id"]
    for content_type in ("text/plain", "image/png", None):
        headers = {"Content-Type": content_type} if content_type else {}
        data = f"body as {content_type}".encode()
        response = site.http.post(f"{site.base}/{rid}/files/{content_type or 'none'}.bin", data=data, headers=headers,
                                  params={"inbody": "true", "overwrite": "false", "format": "U"}, timeout=10)
        assert response.status_code == 200
        assert_round_trip(site, "NIFTI", f"{content_type or 'none'}.bin", data)
    assert [r["label"] for r in site.http.get(site.base, timeout=10).json()["ResultSet"]["Result"]] == ["NIFTI"]


def test_multipart_every_part_and_form_fields_as_params(site: SimpleNamespace) -> None:
    files = [("file", ("a.txt", b"alpha")), ("file", ("b.txt", b"bravo")), ("other", ("../../c.txt", b"charlie"))]
    response = site.http.post(f"{site.base}/MULTI/files", files=files, data={"content": "NOTES"}, timeout=10)
    assert response.status_code == 200
    rows = rows_by_path(site, "MULTI")
    assert set(rows) == {"a.txt", "b.txt", "c.txt"}
    assert {r["file_content"] for r in rows.values()} == {"NOTES"}
    for path, data in (("a.txt", b"alpha"), ("b.txt", b"bravo"), ("c.txt", b"charlie")):
        assert_round_trip(site, "MULTI", path, data)
    # one part to a file path is stored at that path; several parts to a folder go inside it
    assert site.http.put(f"{site.base}/MULTI/files/renamed/x.txt", files={"f": ("orig.txt", b"x")},
                         timeout=10).status_code == 200
    assert site.http.put(f"{site.base}/MULTI/files/folder/", files=files[:2], timeout=10).status_code == 200
    assert {"renamed/x.txt", "folder/a.txt", "folder/b.txt"} <= set(rows_by_path(site, "MULTI"))


def test_inbody_with_multipart_is_406_and_empty_body_is_400(site: SimpleNamespace) -> None:
    refused = site.http.put(f"{site.base}/R/files/a.txt", params={"inbody": "true"},
                            files={"f": ("a.txt", b"a")}, timeout=10)
    assert refused.status_code == 406 and "In-body File posts" in refused.text
    empty = site.http.put(f"{site.base}/R/files/a.txt", data=b"", headers={"Content-Type": "application/octet-stream"},
                          timeout=10)
    assert empty.status_code == 400 and "didn't provide any data" in empty.text
    nameless = site.http.put(f"{site.base}/R/files", files={"f": ("", b"data")}, timeout=10)
    assert nameless.status_code == 400 and "file name" in nameless.text
    assert list(site.store.tmp_dir.iterdir()) == []
    assert site.http.get(site.base, timeout=10).json()["ResultSet"]["Result"] == []  # no resource made


def test_overwrite_semantics(site: SimpleNamespace) -> None:
    url = f"{site.base}/R/files/dir/f.txt"
    assert site.http.put(url, data=b"first", timeout=10).status_code == 200
    duplicate = site.http.put(url, data=b"second", timeout=10)
    assert duplicate.status_code == 200
    assert duplicate.headers["Content-Type"].startswith("text/html")
    assert duplicate.json() == {"duplicates": ["dir/f.txt"]}
    assert_round_trip(site, "R", "dir/f.txt", b"first")
    replaced = site.http.put(url, data=b"third!", params={"overwrite": "true"}, timeout=10)
    assert replaced.status_code == 200 and replaced.text == ""
    assert_round_trip(site, "R", "dir/f.txt", b"third!")
    assert len(rows_by_path(site, "R")) == 1


def test_extract_zip_and_tar_into_resource_root(site: SimpleNamespace) -> None:
    members = {"top.txt": b"top", "d1/d2/deep.dcm": os.urandom(5000), "./dot.txt": b"dot"}
    response = site.http.put(f"{site.base}/X/files/upload/archive.zip", data=make_zip(members),
                             params={"extract": "true"}, headers={"Content-Type": "application/zip"}, timeout=10)
    assert response.status_code == 200
    assert set(rows_by_path(site, "X")) == {"top.txt", "d1/d2/deep.dcm", "dot.txt"}  # archive itself not kept
    assert_round_trip(site, "X", "d1/d2/deep.dcm", members["d1/d2/deep.dcm"])

    again = site.http.put(f"{site.base}/X/files/archive.zip", data=make_zip({"top.txt": b"new", "more.txt": b"m"}),
                          params={"extract": "true"}, timeout=10)
    assert again.json() == {"duplicates": ["top.txt"]}
    assert_round_trip(site, "X", "top.txt", b"top")
    assert_round_trip(site, "X", "more.txt", b"m")

    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("t/a.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"tar"))
        link = tarfile.TarInfo("t/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    assert site.http.put(f"{site.base}/T/files/x.tar.gz", data=tar_buffer.getvalue(), params={"extract": "true"},
                         timeout=10).status_code == 200
    assert set(rows_by_path(site, "T")) == {"t/a.txt"}  # the symlink is skipped

    kept = site.http.put(f"{site.base}/K/files/keep.zip", data=make_zip({"a": b"a"}), timeout=10)
    assert kept.status_code == 200 and set(rows_by_path(site, "K")) == {"keep.zip"}  # no extract → stored


@pytest.mark.parametrize("evil", ["../../escape.txt", "/abs.txt", "..\\escape.txt", "a/../../b.txt"])
def test_unsafe_zip_members_refuse_the_whole_archive(site: SimpleNamespace, evil: str) -> None:
    data_dir = site.store.data_dir
    before = tree_outside_data(data_dir)
    response = site.http.put(f"{site.base}/Z/files/evil.zip", data=make_zip({"good.txt": b"g", evil: b"evil"}),
                             params={"extract": "true"}, timeout=10)
    assert response.status_code == 400
    assert tree_outside_data(data_dir) == before
    assert site.http.get(site.base, timeout=10).json()["ResultSet"]["Result"] == []
    assert not [p for p in data_dir.rglob("*escape*")]
    assert list(site.store.tmp_dir.iterdir()) == []  # spooled copies cleaned up


def test_traversal_in_url_path_is_refused_and_nothing_is_written(site: SimpleNamespace) -> None:
    data_dir = site.store.data_dir
    before = tree_outside_data(data_dir)
    path = f"/data/experiments/{site.session.id}/scans/1/resources/R/files"
    connection = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=10)
    auth = {"Authorization": "Basic YWRtaW46YWRtaW4=", "Content-Type": "application/octet-stream"}
    for evil in ("../../../../escape.txt", "a/../../escape.txt", "a//escape.txt", "a%5C..%5Cescape%20.txt",
                 "sub/%2e%2e/%2e%2e/escape%20.txt"):  # %20: XNAT decodes these paths, so the escapes count
        connection.request("PUT", f"{path}/{evil}", body=b"evil", headers=auth)
        response = connection.getresponse()
        response.read()
        assert response.status == 400, evil
        connection.close()
    # without %20/%2B XNAT does not decode: the escapes are the name's own characters, stored as such
    for literal in ("a%5C..%5Cescape.txt", "sub/%2e%2e/%2e%2e/escape.txt"):
        connection.request("PUT", f"{path}/{literal}", body=b"literal", headers=auth)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, literal
        connection.close()
    connection.request("PUT", f"{path}//abs/escape.txt", body=b"evil", headers=auth)
    response = connection.getresponse()
    response.read()
    assert response.status >= 400  # no route accepts an absolute path
    connection.close()
    assert tree_outside_data(data_dir) == before
    escaped = [p for p in data_dir.parent.rglob("escape*.txt") if not p.is_relative_to(data_dir / "archive/resources")]
    assert not escaped  # the literal names live inside their resource's folder, nowhere else
    stored = sorted(r["URI"].split("/files/", 1)[1] for r in site.http.get(f"{site.base}/R/files", timeout=10).json()[
        "ResultSet"]["Result"])
    assert stored == ["a%5C..%5Cescape.txt", "sub/%2e%2e/%2e%2e/escape.txt"]


def test_chunked_body_and_xnatpy_upload_dir_tarball(site: SimpleNamespace, tmp_path: Path) -> None:
    def body() -> Iterator[bytes]:  # no length: requests sends Transfer-Encoding: chunked
        for i in range(8):
            yield bytes([i]) * 100_000

    response = site.http.put(f"{site.base}/C/files/chunked.bin", data=body(), timeout=10,
                             headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert_round_trip(site, "C", "chunked.bin", b"".join(body()))
    # xnatpy's upload_dir: tar.add(directory, "") then PUT upload.tar.gz?extract=true
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_bytes(b"a")
    (tmp_path / "sub" / "b.txt").write_bytes(b"b")
    buffer = io.BytesIO()
    with tarfile.open(mode="w:gz", fileobj=buffer) as tf:
        tf.add(tmp_path, "")
    response = site.http.put(f"{site.base}/DIR/files/upload.tar.gz", data=buffer.getvalue(), timeout=10,
                             params={"extract": "true", "overwrite": "true"},
                             headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200
    assert set(rows_by_path(site, "DIR")) == {"a.txt", "sub/b.txt"}


def test_delete_file_and_folder(site: SimpleNamespace) -> None:
    for path in ("keep.txt", "dir/a.txt", "dir/sub/b.txt"):
        assert site.http.put(f"{site.base}/D/files/{path}", data=path.encode(), timeout=10).status_code == 200
    disk = site.store.get_file(int(rows_by_path(site, "D")["keep.txt"]["cat_ID"]), "dir/a.txt").disk_path
    assert site.http.delete(f"{site.base}/D/files/dir/a.txt", timeout=10).status_code == 200
    assert not disk.exists()
    assert set(rows_by_path(site, "D")) == {"keep.txt", "dir/sub/b.txt"}
    assert site.http.delete(f"{site.base}/D/files/dir/", timeout=10).status_code == 200
    assert set(rows_by_path(site, "D")) == {"keep.txt"}
    missing = site.http.delete(f"{site.base}/D/files/nothing.txt", timeout=10)
    assert missing.status_code == 404 and "No matched files" in missing.text
    assert site.http.delete(f"{site.base}/D/files/nothing.txt", params={"accept-not-found": "true"},
                            timeout=10).status_code == 204


def test_large_upload_is_spooled_with_bounded_memory(site: SimpleNamespace, tmp_path: Path) -> None:
    size = 128 * MiB
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        out.truncate(size)
        out.seek(size // 2)
        out.write(b"marker")
    before = psutil.Process().memory_info().rss
    with open(source, "rb") as body:
        response = site.http.put(f"{site.base}/BIG/files/big.bin", data=body, timeout=60,
                                 headers={"Content-Type": "application/octet-stream"})
    growth = (psutil.Process().memory_info().rss - before) / MiB
    assert response.status_code == 200
    assert growth < 50, f"RSS grew by {growth:.1f} MiB"
    row = rows_by_path(site, "BIG")["big.bin"]
    digest = hashlib.md5()
    with open(source, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    assert row["Size"] == str(size) and row["digest"] == digest.hexdigest()
    assert list(site.store.tmp_dir.iterdir()) == []


def test_upload_to_missing_owner_is_404_and_to_many_scans_too(site: SimpleNamespace) -> None:
    site.store.create_scan(site.session.id, "2", fields={"type": "T1"})
    url = site.server.url
    assert site.http.put(f"{url}/data/projects/NOPE/resources/R/files/a.txt", data=b"a", timeout=10).status_code == 404
    many = site.http.put(f"{url}/data/experiments/{site.session.id}/scans/T1/resources/R/files/a.txt", data=b"a",
                         timeout=10)
    assert many.status_code == 404
    assert site.store.list_resources_of_experiment(site.session.id, ("scan",)) == []


def test_tmp_files_not_left_behind_and_data_dir_only(site: SimpleNamespace) -> None:
    tempfile_dir = Path(tempfile.gettempdir())
    assert site.http.put(f"{site.base}/R/files/x.txt", files={"f": ("x.txt", b"x" * 600_000)},
                         timeout=10).status_code == 200
    assert list(site.store.tmp_dir.iterdir()) == []
    assert not list(tempfile_dir.glob("part-*"))
