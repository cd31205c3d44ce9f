"""File listings and single-file downloads over real HTTP (spec §13.1, §13.2, §17)."""

from __future__ import annotations

import email.utils
import hashlib
import os
from types import SimpleNamespace

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

FILE_KEYS = ["Name", "Size", "URI", "collection", "file_tags", "file_format", "file_content", "cat_ID", "digest"]
FILES = {"1.dcm": b"\x00DICM" * 100, "sub/2.dcm": b"second", "sub/deeper/3.dcm": b"third!!",
         "report.pdf": b"%PDF-1.4", "notes.txt": b"hello\n", "page.HTML": b"<p>x</p>", "vol.nii.gz": b"\x1f\x8b"}


@pytest.fixture(scope="module")
def archive(module_emulator: EmulatorServer, module_http: requests.Session) -> SimpleNamespace:
    server = module_emulator
    store = server.store
    project = store.create_project("PRJ")
    subject = store.create_subject("PRJ", "SUBJ")
    session = store.create_experiment("PRJ", subject.id, "SESS")
    scan = store.create_scan(session.id, "7", fields={"type": "T2"})
    dicom = store.create_resource(scan, "DICOM")
    for path, data in FILES.items():
        fmt = "DICOM" if path.endswith(".dcm") else ""
        store.add_file(dicom.id, path, data, format=fmt, content="RAW" if fmt else "", tags="t1" if fmt else "")
    extra = store.create_resource(scan, "EXTRA")
    store.add_file(extra.id, "extra.txt", b"x")
    docs = store.create_resource(project, "DOCS")
    store.add_file(docs.id, "readme.txt", b"read me")
    return SimpleNamespace(server=server, url=server.url, http=module_http, subject=subject, session=session,
                           dicom=dicom, extra=extra, docs=docs, store=store)


def listing(a: SimpleNamespace, path: str, **params: str) -> dict:
    response = a.http.get(f"{a.url}{path}", params={"format": "json", **params}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["ResultSet"]


def test_resource_listing_rows_keys_types_and_digest(archive: SimpleNamespace) -> None:
    e, rid = archive.session.id, archive.dicom.id
    body = listing(archive, f"/data/experiments/{e}/scans/7/resources/DICOM/files")
    assert body["title"] == "Files" and "totalRecords" not in body
    assert body["Columns"] == [{"key": "URI", "serverRoot": ""}]
    rows = {r["URI"]: r for r in body["Result"]}
    assert len(rows) == len(FILES)
    for path, data in FILES.items():
        row = rows[f"/data/experiments/{e}/scans/7/resources/{rid}/files/{path}"]
        assert list(row) == FILE_KEYS and all(isinstance(v, str) for v in row.values())
        assert row["Name"] == path.rsplit("/", 1)[-1]
        assert row["Size"] == str(len(data))
        assert row["digest"] == hashlib.md5(data).hexdigest()
        assert (row["collection"], row["cat_ID"]) == ("DICOM", str(rid))
    assert rows[f"/data/experiments/{e}/scans/7/resources/{rid}/files/1.dcm"]["file_format"] == "DICOM"
    assert rows[f"/data/experiments/{e}/scans/7/resources/{rid}/files/1.dcm"]["file_tags"] == "t1"


def test_single_catalog_uri_keeps_project_and_subject_from_the_url(archive: SimpleNamespace) -> None:
    s, e, rid = archive.subject.id, archive.session.id, archive.dicom.id
    body = listing(archive, "/data/projects/PRJ/subjects/SUBJ/experiments/SESS/scans/7/resources/DICOM/files")
    assert f"/data/projects/PRJ/subjects/{s}/experiments/{e}/scans/7/resources/{rid}/files/1.dcm" in \
        [r["URI"] for r in body["Result"]]
    # without the subject in the URL XNAT's base is the experiment
    body = listing(archive, "/data/projects/PRJ/experiments/SESS/scans/7/resources/DICOM/files")
    assert f"/data/experiments/{e}/scans/7/resources/{rid}/files/1.dcm" in [r["URI"] for r in body["Result"]]
    body = listing(archive, "/data/projects/PRJ/resources/DOCS/files")
    assert [r["URI"] for r in body["Result"]] == [f"/data/projects/PRJ/resources/{archive.docs.id}/files/readme.txt"]


def test_owner_files_merge_every_resource_with_sql_style_uris(archive: SimpleNamespace) -> None:
    e = archive.session.id
    for path in (f"/data/experiments/{e}/scans/7/files",
                 "/data/projects/PRJ/subjects/SUBJ/experiments/SESS/scans/7/files",
                 f"/data/experiments/{e}/scans/7/resources/DICOM,EXTRA/files"):
        rows = listing(archive, path)["Result"]
        assert {r["collection"] for r in rows} == {"DICOM", "EXTRA"}, path
        assert f"/data/experiments/{e}/scans/7/resources/{archive.extra.id}/files/extra.txt" in [r["URI"] for r in rows]
    # an experiment's own files are its own resources only; all=true adds the scans'
    assert listing(archive, f"/data/experiments/{e}/files")["Result"] == []
    assert len(listing(archive, f"/data/experiments/{e}/files", all="true")["Result"]) == len(FILES) + 1


def test_folder_listing_filters_and_locator(archive: SimpleNamespace) -> None:
    base = f"/data/experiments/{archive.session.id}/scans/7/resources/DICOM/files"
    names = sorted(r["Name"] for r in listing(archive, base + "/sub/")["Result"])
    assert names == ["2.dcm", "3.dcm"]
    shallow = [r["Name"] for r in listing(archive, base + "/sub/", recursive="false")["Result"]]
    assert shallow == ["2.dcm"]
    dicom_only = listing(archive, base, file_format="DICOM")["Result"]
    assert sorted(r["Name"] for r in dicom_only) == ["1.dcm", "2.dcm", "3.dcm"]
    untyped = listing(archive, base, file_format="NULL")["Result"]
    assert len(untyped) == len(FILES) - 3
    located = listing(archive, base, locator="absolutePath")["Result"]
    assert "URI" not in located[0] and os.path.isfile(located[0]["absolutePath"])


def test_listing_csv_and_xml(archive: SimpleNamespace) -> None:
    url = f"{archive.url}/data/projects/PRJ/resources/DOCS/files"
    csv_lines = archive.http.get(url, params={"format": "csv"}, timeout=10).text.splitlines()
    assert csv_lines[0].split(",") == FILE_KEYS and csv_lines[1].startswith("readme.txt,7,/data/projects/PRJ/")
    root = etree.fromstring(archive.http.get(url, params={"format": "xml"}, timeout=10).content)
    assert root.get("title") == "Files" and root.get("totalRecords") is None
    uri_column = [c for c in root.iter("column") if c.text == "URI"][0]
    assert uri_column.get("serverRoot") == ""


def test_download_headers_and_body(archive: SimpleNamespace) -> None:
    base = f"{archive.url}/data/experiments/{archive.session.id}/scans/7/resources/DICOM/files"
    expected_types = {"1.dcm": "application/octet-stream", "report.pdf": "application/pdf",
                      "notes.txt": "text/plain", "page.HTML": "text/html", "vol.nii.gz": "application/octet-stream"}
    for path, content_type in expected_types.items():
        response = archive.http.get(f"{base}/{path}", timeout=10)
        assert response.status_code == 200
        assert response.content == FILES[path]
        assert response.headers["Content-Type"] == content_type, path
        assert response.headers["Content-Length"] == str(len(FILES[path]))
        name = path.rsplit("/", 1)[-1]
        assert response.headers["Content-Disposition"] == f'attachment; filename="{name}";'
        assert response.headers["Cache-Control"] == "must-revalidate"
        assert "Content-Range" not in response.headers
    row = archive.store.get_file(archive.dicom.id, "sub/deeper/3.dcm")
    nested = archive.http.get(f"{base}/sub/deeper/3.dcm", timeout=10)
    assert nested.content == FILES["sub/deeper/3.dcm"]
    assert email.utils.parsedate_to_datetime(nested.headers["Last-Modified"]).timestamp() == int(row.mtime)


def test_head_has_the_headers_and_no_body(archive: SimpleNamespace) -> None:
    url = f"{archive.url}/data/experiments/{archive.session.id}/scans/7/resources/DICOM/files/1.dcm"
    head = archive.http.head(url, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(FILES["1.dcm"]))
    assert head.headers["Content-Type"] == "application/octet-stream"
    assert "Last-Modified" in head.headers and head.headers["Accept-Ranges"] == "bytes"


def test_download_through_owner_files_and_by_numeric_resource_id(archive: SimpleNamespace) -> None:
    e = archive.session.id
    merged = archive.http.get(f"{archive.url}/data/experiments/{e}/scans/7/files/extra.txt", timeout=10)
    assert merged.status_code == 200 and merged.content == b"x"
    by_id = archive.http.get(f"{archive.url}/REST/experiments/{e}/scans/7/resources/{archive.dicom.id}/files/notes.txt",
                             timeout=10)
    assert by_id.content == FILES["notes.txt"]


def test_missing_files_are_404_or_204_when_accepted(archive: SimpleNamespace) -> None:
    base = f"{archive.url}/data/experiments/{archive.session.id}/scans/7/resources/DICOM/files"
    missing = archive.http.get(f"{base}/nope.dcm", timeout=10)
    assert missing.status_code == 404 and "Unable to find catalog entry for given uri." in missing.text
    assert archive.http.get(f"{base}/sub", timeout=10).status_code == 404  # a folder without its slash
    accepted = archive.http.get(f"{base}/nope.dcm", params={"accept-not-found": "true"}, timeout=10)
    assert accepted.status_code == 204 and accepted.content == b""
    assert archive.http.get(f"{archive.url}/data/experiments/{archive.session.id}/scans/99/resources/DICOM/files",
                            timeout=10).status_code == 404


def test_file_deleted_on_disk_answers_unable_to_find_file(fresh_emulator: EmulatorServer) -> None:
    store = fresh_emulator.store
    resource = store.create_resource(store.create_project("P"), "R")
    row = store.add_file(resource.id, "gone.txt", b"soon gone")
    row.disk_path.unlink()
    response = requests.get(f"{fresh_emulator.url}/data/projects/P/resources/R/files/gone.txt",
                            auth=("admin", "admin"), timeout=10)
    assert response.status_code == 404 and "Unable to find file." in response.text
