"""``?format=zip`` downloads over real HTTP, opened with zipfile and compared byte for byte (spec §13.3)."""

from __future__ import annotations

import io
import os
import zipfile
from types import SimpleNamespace

import pytest
import requests

from xnatfs.emulator.handlers.files_zip import ChunkSink, ZipItem, zip_chunks
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def archive(module_emulator: EmulatorServer, module_http: requests.Session) -> SimpleNamespace:
    store = module_emulator.store
    project = store.create_project("PRJ")
    subject = store.create_subject("PRJ", "SUBJ")
    session = store.create_experiment("PRJ", subject.id, "SESS_LABEL")
    content: dict[str, bytes] = {}

    def add(owner: object, label: str, files: dict[str, bytes], prefix: str) -> None:
        resource = store.create_resource(owner, label)  # type: ignore[arg-type]
        for path, data in files.items():
            store.add_file(resource.id, path, data)
            content[f"{prefix}/resources/{label}/files/{path}"] = data

    scans = {"1": "T1w MPRAGE", "2": "T2/FLAIR", "3": "T1w MPRAGE", "4": ""}
    for scan_id, scan_type in scans.items():
        scan = store.create_scan(session.id, scan_id, fields={"type": scan_type} if scan_type else {})
        add(scan, "DICOM", {f"{scan_id}.{i:04d}.dcm": os.urandom(3000 + i) for i in range(3)},
            f"scan{scan_id}")
    add(store.get_scan(session.id, "2"), "SNAPSHOTS", {"snap/1.gif": b"GIF89a"}, "scan2")
    add(session, "notes", {"notes.txt": b"session notes", "sub/dir/deep.txt": b"deep"}, "session")
    add(project, "protocols", {"protocol.txt": b"protocol", "docs/README.txt": b"readme"}, "project")
    add(subject, "consent", {"consent.txt": b"yes"}, "subject")
    assessor = store.create_assessor(session.id, "SESS_QC")
    add(assessor, "QC", {"qc.txt": b"pass"}, "assessor")
    return SimpleNamespace(url=module_emulator.url, http=module_http, session=session, subject=subject,
                           content=content, store=store)


def fetch_zip(a: SimpleNamespace, path: str, **params: str) -> tuple[requests.Response, dict[str, bytes]]:
    response = a.http.get(f"{a.url}{path}", params={"format": "zip", **params}, timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"] == "application/zip"
    assert "Content-Length" not in response.headers  # streamed
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert zf.testzip() is None
        return response, {name: zf.read(name) for name in zf.namelist()}


def scan_files(a: SimpleNamespace, scan_id: str, label: str = "DICOM") -> dict[str, bytes]:
    prefix = f"scan{scan_id}/resources/{label}/files/"
    return {k[len(prefix):]: v for k, v in a.content.items() if k.startswith(prefix)}


def test_all_scans_of_a_session(archive: SimpleNamespace) -> None:
    response, entries = fetch_zip(archive, f"/data/experiments/{archive.session.id}/scans/ALL/files")
    assert response.headers["Content-Disposition"] == 'attachment; filename="SESS_LABEL.zip";'
    expected = {}
    for scan_id, folder in (("1", "1-T1w_MPRAGE"), ("2", "2-T2_FLAIR"), ("3", "3-T1w_MPRAGE"), ("4", "4")):
        for path, data in scan_files(archive, scan_id).items():
            expected[f"SESS_LABEL/scans/{folder}/resources/DICOM/files/{path}"] = data
    expected["SESS_LABEL/scans/2-T2_FLAIR/resources/SNAPSHOTS/files/snap/1.gif"] = b"GIF89a"
    assert entries == expected


def test_scan_lists_types_and_untyped(archive: SimpleNamespace) -> None:
    e = archive.session.id
    _, by_ids = fetch_zip(archive, "/data/projects/PRJ/subjects/SUBJ/experiments/SESS_LABEL/scans/1,2/files")
    assert {n.split("/")[2] for n in by_ids} == {"1-T1w_MPRAGE", "2-T2_FLAIR"}
    _, by_type = fetch_zip(archive, f"/data/experiments/{e}/scans/T1w MPRAGE/files")
    assert {n.split("/")[2] for n in by_type} == {"1-T1w_MPRAGE", "3-T1w_MPRAGE"}
    _, slash_type = fetch_zip(archive, f"/data/experiments/{e}/scans/T2[SLASH]FLAIR/files")
    assert {n.split("/")[2] for n in slash_type} == {"2-T2_FLAIR"}
    _, untyped = fetch_zip(archive, f"/data/experiments/{e}/scans/NULL/files")
    assert {n.split("/")[2] for n in untyped} == {"4"}


def test_one_scan_and_one_resource(archive: SimpleNamespace) -> None:
    e = archive.session.id
    _, scan = fetch_zip(archive, f"/data/experiments/{e}/scans/2/files")
    assert set(scan) == {f"SESS_LABEL/scans/2-T2_FLAIR/resources/DICOM/files/{p}" for p in scan_files(archive, "2")} | \
        {"SESS_LABEL/scans/2-T2_FLAIR/resources/SNAPSHOTS/files/snap/1.gif"}
    response, resource = fetch_zip(archive, f"/data/experiments/{e}/scans/1/resources/DICOM/files")
    assert response.headers["Content-Disposition"] == 'attachment; filename="SESS_LABEL.zip";'
    assert resource == {f"SESS_LABEL/scans/1-T1w_MPRAGE/resources/DICOM/files/{p}": d
                        for p, d in scan_files(archive, "1").items()}


def test_experiment_files_own_resources_or_everything(archive: SimpleNamespace) -> None:
    e = archive.session.id
    _, own = fetch_zip(archive, f"/data/experiments/{e}/files")
    assert own == {"SESS_LABEL/resources/notes/files/notes.txt": b"session notes",
                   "SESS_LABEL/resources/notes/files/sub/dir/deep.txt": b"deep"}
    _, everything = fetch_zip(archive, "/data/projects/PRJ/experiments/SESS_LABEL/files", all="true")
    assert "SESS_LABEL/scans/1/resources/DICOM/files/1.0000.dcm" in everything  # no type: scans not in the URL
    assert f"SESS_LABEL/assessors/{archive.store.find_experiment('PRJ', 'SESS_QC').id}/out/resources/QC/files/qc.txt" \
        in everything
    assert len(everything) == len(archive.content) - 3  # project and subject files are not the session's


def test_project_and_subject_resources(archive: SimpleNamespace) -> None:
    response, project = fetch_zip(archive, "/data/projects/PRJ/resources/protocols/files")
    assert response.headers["Content-Disposition"] == 'attachment; filename="PRJ.zip";'
    assert project == {"PRJ/resources/protocols/files/protocol.txt": b"protocol",
                       "PRJ/resources/protocols/files/docs/README.txt": b"readme"}
    response, subject = fetch_zip(archive, "/data/projects/PRJ/subjects/SUBJ/files")
    assert response.headers["Content-Disposition"] == 'attachment; filename="SUBJ.zip";'
    assert subject == {"SUBJ/resources/consent/files/consent.txt": b"yes"}


def test_folder_and_single_file_zips(archive: SimpleNamespace) -> None:
    base = f"/data/experiments/{archive.session.id}/resources/notes/files"
    _, folder = fetch_zip(archive, f"{base}/sub/")
    assert folder == {"sub/dir/deep.txt": b"deep"}
    _, single = fetch_zip(archive, f"{base}/notes.txt")
    assert single == {"notes.txt": b"session notes"}


def test_deflate_on_request(archive: SimpleNamespace) -> None:
    response = archive.http.get(f"{archive.url}/data/projects/PRJ/resources/protocols/files",
                                params={"format": "zip", "compression": "8"}, timeout=10)
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
        assert zf.read("PRJ/resources/protocols/files/protocol.txt") == b"protocol"


def test_empty_selection_is_404(archive: SimpleNamespace) -> None:
    e = archive.session.id
    empty_resource = archive.store.create_resource(archive.store.get_scan(e, "4"), "EMPTY")
    assert empty_resource.id > 0
    for path in (f"/data/experiments/{e}/scans/4/resources/EMPTY/files", f"/data/experiments/{e}/resources/NOPE/files",
                 "/data/projects/PRJ/resources/protocols/files/nope/"):
        response = archive.http.get(f"{archive.url}{path}", params={"format": "zip"}, timeout=10)
        assert response.status_code == 404, path


def test_zip_chunks_yield_pieces_not_the_whole_archive(tmp_path: os.PathLike) -> None:
    """The generator never holds more than about one read chunk of output at a time."""
    big = os.path.join(tmp_path, "big.bin")
    with open(big, "wb") as out:
        out.truncate(20 * 1024 * 1024)
    pieces = list(zip_chunks([ZipItem("a/big.bin", big), ZipItem("b/small.txt", big)]))  # type: ignore[arg-type]
    assert len(pieces) > 20 and max(len(p) for p in pieces) <= 1024 * 1024 + 4096
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as zf:
        assert [i.file_size for i in zf.infolist()] == [20 * 1024 * 1024] * 2
    sink = ChunkSink()
    sink.write(b"ab")
    sink.write(memoryview(b"cd"))
    assert sink.take() == b"abcd" and sink.take() == b""
