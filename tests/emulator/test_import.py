"""The import service over real HTTP: zips of real DICOM into the prearchive and the archive (spec §15).

DICOM comes from `dicomgen` (synthetic multi-slice series) and from pydicom's own test files
(`MR_small*.dcm` share one SOP instance, `CT_small.dcm` is another study). Every refusal is checked
to leave the database and the data directory exactly as they were.
"""

from __future__ import annotations

import io
import tarfile
import tracemalloc
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pydicom.data
import pytest
import requests

from xnatfs.emulator.dicomgen import make_series, make_tar, make_uid, make_zip
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

ZIP = {"Content-Type": "application/zip"}
MR_SMALL = ("MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
            "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
            "MR_small_padded.dcm")


def study_files(tag: str, *, patient: str = "Doe^Jane", patient_id: str = "SESS_A",
                series: tuple[tuple[int, str, str, int], ...] = ((1, "T1w MPRAGE", "MR", 4), (2, "T2w", "MR", 3)),
                study_description: str = "", folder: str | None = None) -> dict[str, bytes]:
    """Zip entries (`<folder>/<series>/IM0001.dcm`…) of one synthetic study."""
    study_uid = make_uid(tag, "study")
    entries = {}
    for number, description, modality, slices in series:
        encoded = make_series(study_uid=study_uid, series_uid=make_uid(tag, str(number)),
                              frame_of_reference_uid=make_uid(tag, "frame"), patient_name=patient,
                              patient_id=patient_id, modality=modality, series_number=number,
                              series_description=description, study_date="20240102", study_time="093000",
                              rows=16, columns=16, slices=slices, study_description=study_description,
                              manufacturer="SIEMENS", model="Prisma", station_name="MR7")
        for index, data in enumerate(encoded, 1):
            entries[f"{folder or tag}/{number}/IM{index:04d}.dcm"] = data
    return entries


def pydicom_file(name: str) -> bytes:
    return Path(pydicom.data.get_testdata_file(name)).read_bytes()


@pytest.fixture
def site(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> SimpleNamespace:
    fresh_emulator.store.create_project("P1")
    fresh_emulator.store.create_project("P2")
    assert fresh_http.get(f"{fresh_emulator.url}/data/prearchive", timeout=10).status_code == 200
    return SimpleNamespace(server=fresh_emulator, store=fresh_emulator.store, http=fresh_http, url=fresh_emulator.url)


def post_import(site: SimpleNamespace, body: bytes, headers: dict[str, str] | None = None, path: str = "",
                **params: str) -> requests.Response:
    return site.http.post(f"{site.url}/data/services/import{path}", params=params, data=body,
                          headers=ZIP if headers is None else headers, timeout=60)


def prearchive_rows(site: SimpleNamespace, project: str | None = None) -> list[dict[str, str]]:
    url = f"{site.url}/data/prearchive/projects" + (f"/{project}" if project else "")
    response = site.http.get(url, params={"format": "json"}, timeout=10)
    assert response.status_code == 200
    return response.json()["ResultSet"]["Result"]


def snapshot(server: EmulatorServer) -> tuple[dict, list]:
    """Every row of every table, and every file (path, size) in the data directory but the database."""
    store = server.store
    tables = [r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type='table' "
                                        "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    rows = {t: sorted(tuple(r) for r in store.query(f"SELECT * FROM {t}")) for t in tables}
    files = sorted((str(p.relative_to(server.data_dir)), p.stat().st_size)
                   for p in server.data_dir.rglob("*") if p.is_file() and not p.name.startswith("xnat.db"))
    return rows, files


def test_zip_to_prearchive_lists_and_downloads_byte_for_byte(site: SimpleNamespace) -> None:
    entries = study_files("pre1")
    response = post_import(site, make_zip(entries), project="P1")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/uri-list")
    assert response.text.endswith("\r\n") and response.text.count("\r\n") == 1
    uri = response.text.strip()
    assert uri.startswith("/data/prearchive/projects/P1/") and uri.endswith("/SESS_A")
    [row] = prearchive_rows(site, "P1")
    assert row["url"] == uri[len("/data"):]
    assert (row["subject"], row["name"], row["folderName"]) == ("Doe^Jane", "SESS_A", "SESS_A")
    assert row["status"] == "READY"
    assert row["scan_date"] == "2024-01-02 09:30:00.0" and row["scan_time"] == "09:30:00"
    assert row["tag"] == make_uid("pre1", "study")
    scans = site.http.get(f"{site.url}{uri}/scans", params={"format": "json"}, timeout=10).json()
    assert scans["ResultSet"]["Result"] == [
        {"ID": "1", "xsiType": "xnat:mrScanData", "series_description": "T1w MPRAGE"},
        {"ID": "2", "xsiType": "xnat:mrScanData", "series_description": "T2w"}]
    for number in ("1", "2"):
        listing = site.http.get(f"{site.url}{uri}/scans/{number}/resources/DICOM/files",
                                params={"format": "json"}, timeout=10).json()["ResultSet"]["Result"]
        expected = {k.rsplit("/", 1)[1]: v for k, v in entries.items() if k.split("/")[1] == number}
        assert {r["Name"] for r in listing} == set(expected)
        for r in listing:
            assert r["Size"] == str(len(expected[r["Name"]]))
            assert r["URI"] == f"{uri}/scans/{number}/resources/DICOM/files/{r['Name']}"
            assert site.http.get(site.url + r["URI"], timeout=10).content == expected[r["Name"]]
    downloaded = site.http.get(f"{site.url}{uri}", params={"format": "zip"}, timeout=30)
    assert downloaded.status_code == 200 and downloaded.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(downloaded.content)) as archive:
        got = {name: archive.read(name) for name in archive.namelist()}
    assert got == {f"SESS_A/SCANS/{k.split('/')[1]}/DICOM/{k.rsplit('/', 1)[1]}": v for k, v in entries.items()}


def test_pydicom_test_files_duplicates_kept_once_and_two_studies_two_sessions(site: SimpleNamespace) -> None:
    entries = {f"mr/{name}": pydicom_file(name) for name in MR_SMALL}
    entries["ct/CT_small.dcm"] = pydicom_file("CT_small.dcm")
    response = post_import(site, make_zip(entries), project="P1", format="txt")
    assert response.status_code == 200
    uris = response.text.split("\r\n")[:-1]
    assert len(uris) == 2 and all(u.startswith("/data/prearchive/projects/P1/") for u in uris)
    rows = {r["name"]: r for r in prearchive_rows(site, "P1")}
    assert set(rows) == {"4MR1", "1CT1"}
    assert rows["4MR1"]["subject"] == "CompressedSamples^MR1" and rows["4MR1"]["scan_date"].startswith("2004-08-26")
    mr_uri = next(u for u in uris if u.endswith("/4MR1"))
    listing = site.http.get(f"{site.url}{mr_uri}/scans/1/resources/DICOM/files", timeout=10)
    files = listing.json()["ResultSet"]["Result"]
    assert [f["Name"] for f in files] == ["MR_small.dcm"]  # the first copy of the instance wins
    assert site.http.get(site.url + files[0]["URI"], timeout=10).content == pydicom_file("MR_small.dcm")
    ct_uri = next(u for u in uris if u.endswith("/1CT1"))
    xml = site.http.get(f"{site.url}{ct_uri}", params={"format": "xml"}, timeout=10)
    assert xml.status_code == 200 and "<xnat:CTSession" in xml.text and 'xsi:type="xnat:ctScanData"' in xml.text


def test_zip_straight_to_archive_with_xnat_parameter_spellings(site: SimpleNamespace) -> None:
    entries = study_files("arc1")
    response = post_import(site, make_zip(entries), dest="/archive", PROJECT_ID="P2", SUBJECT_ID="SUBJ 9",
                           EXPT_LABEL="MR_9")
    assert response.status_code == 200
    assert response.text == "/data/archive/projects/P2/subjects/SUBJ_9/experiments/MR_9\r\n"
    assert prearchive_rows(site) == []
    store = site.store
    session = store.find_experiment("P2", "MR_9")
    assert session.xsi_type == "xnat:mrSessionData"
    assert store.get_subject(session.subject_id).label == "SUBJ_9"
    assert session.fields["UID"] == make_uid("arc1", "study") and session.fields["date"] == "2024-01-02"
    assert session.fields["scanner/manufacturer"] == "SIEMENS" and session.fields["dcmPatientName"] == "Doe^Jane"
    scans = store.list_scans(session.id)
    assert [(s.id, s.xsi_type, s.fields["type"], s.fields["frames"]) for s in scans] == [
        ("1", "xnat:mrScanData", "T1w MPRAGE", "4"), ("2", "xnat:mrScanData", "T2w", "3")]
    for scan in scans:
        [resource] = store.list_resources(scan)
        assert (resource.label, resource.format, resource.content) == ("DICOM", "DICOM", "RAW")
        stored = {f.path: f.disk_path.read_bytes() for f in store.list_files(resource.id)}
        assert stored == {k.rsplit("/", 1)[1]: v for k, v in entries.items() if k.split("/")[1] == scan.id}
    downloaded = site.http.get(f"{site.url}/data/experiments/{session.id}/scans/1/resources/DICOM/files/IM0001.dcm",
                               timeout=10)
    assert downloaded.status_code == 200 and downloaded.content == entries["arc1/1/IM0001.dcm"]


def test_lower_case_parameters_win_and_dest_names_the_project(site: SimpleNamespace) -> None:
    response = post_import(site, make_zip(study_files("prec")), dest="/prearchive/projects/P2", PROJECT_ID="P1",
                           session="S_low", EXPT_LABEL="S_up", subject="Sub")
    assert response.status_code == 200 and "/P2/" in response.text and response.text.strip().endswith("/S_low")
    [row] = prearchive_rows(site, "P2")
    assert row["subject"] == "Sub" and row["name"] == "S_low"


def test_multipart_tar_and_named_octet_stream_uploads(site: SimpleNamespace) -> None:
    entries = study_files("forms", series=((5, "Localizer", "MR", 2),))
    zipped = make_zip(entries)
    multipart = site.http.post(f"{site.url}/data/services/import", params={"project": "P1"},
                               files={"file": ("study.zip", zipped, "application/zip")},
                               data={"session": "FROM_FORM"}, timeout=30)
    assert multipart.status_code == 200 and multipart.text.strip().endswith("/FROM_FORM")
    for suffix, mode, content_type in (("tar", "w", "application/x-tar"), ("tar.gz", "w:gz", "application/x-gtar")):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as archive:
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        response = post_import(site, buffer.getvalue(), {"Content-Type": content_type}, project="P1",
                               session=f"T_{suffix.replace('.', '_')}")
        assert response.status_code == 200, response.text
    named = post_import(site, zipped, {"Content-Type": "application/octet-stream"}, path="/upload.zip",
                        project="P1", session="NAMED")
    assert named.status_code == 200 and named.text.strip().endswith("/NAMED")
    assert {r["name"] for r in prearchive_rows(site, "P1")} == {"FROM_FORM", "T_tar", "T_tar_gz", "NAMED"}


def test_unknown_project_goes_to_unassigned_and_study_description_names_a_project(site: SimpleNamespace) -> None:
    response = post_import(site, make_zip(study_files("una")), project="NOPE")
    assert response.status_code == 200 and response.text.startswith("/data/prearchive/projects/Unassigned/")
    [row] = prearchive_rows(site, "Unassigned")
    assert row["project"] == "Unassigned" and row["autoarchive"] == ""
    routed = post_import(site, make_zip(study_files("desc", study_description="P2")))
    assert routed.status_code == 200 and routed.text.startswith("/data/prearchive/projects/P2/")


def test_same_study_again_is_added_to_the_same_prearchive_session(site: SimpleNamespace) -> None:
    first = post_import(site, make_zip(study_files("again", series=((1, "T1w", "MR", 2),))), project="P1")
    more = study_files("again", series=((1, "T1w", "MR", 2), (3, "DWI", "MR", 2)))
    second = post_import(site, make_zip(more), project="P1")
    assert first.status_code == second.status_code == 200 and first.text == second.text
    [row] = prearchive_rows(site, "P1")
    scans = site.http.get(f"{site.url}{first.text.strip()}/scans", timeout=10).json()["ResultSet"]["Result"]
    assert [s["ID"] for s in scans] == ["1", "3"] and row["status"] == "READY"


def test_archive_overwrite_modes(site: SimpleNamespace) -> None:
    base = study_files("ow", series=((1, "T1w", "MR", 2),))
    assert post_import(site, make_zip(base), dest="/archive/projects/P1", session="E").status_code == 200
    appended = post_import(site, make_zip(study_files("ow", series=((2, "T2w", "MR", 2),))),
                           dest="/archive/projects/P1", session="E", overwrite="append")
    assert appended.status_code == 200
    session = site.store.find_experiment("P1", "E")
    assert [s.id for s in site.store.list_scans(session.id)] == ["1", "2"]
    before = snapshot(site.server)
    same_files = post_import(site, make_zip(base), dest="/archive/projects/P1", session="E", overwrite="append")
    assert same_files.status_code == 409 and "<h3>Session already exists with matching files.</h3>" in same_files.text
    assert snapshot(site.server) == before
    replaced = post_import(site, make_zip(base), dest="/archive/projects/P1", session="E", overwrite="delete")
    assert replaced.status_code == 200
    other_study = post_import(site, make_zip(study_files("other", series=((7, "X", "MR", 1),))),
                              dest="/archive/projects/P1", session="E", overwrite="append")
    assert other_study.status_code == 409 and "Invalid modification of session UID" in other_study.text


GOOD = study_files("bad", series=((1, "T1w", "MR", 2),))
GOOD_ZIP = make_zip(GOOD)


BAD_INPUTS = {
    "not a zip": (b"this is plain text, not an archive", ZIP, {}, 400, "not a zip or tar archive"),
    "truncated zip": (GOOD_ZIP[: len(GOOD_ZIP) // 2], ZIP, {}, 400, "truncated or corrupt"),
    "no DICOM": (make_zip({"readme.txt": b"hello", "notes/a.txt": b"x"}), ZIP, {}, 400, "no DICOM"),
    "DICOM and a README": (make_zip({**GOOD, "README.txt": b"hi"}), ZIP, {}, 400,
                           "unable to read DICOM object README.txt"),
    "dot-dot entry": (make_zip({**GOOD, "../evil.dcm": GOOD["bad/1/IM0001.dcm"]}), ZIP, {}, 400, "unsafe path"),
    "absolute entry": (make_zip({"/tmp/evil.dcm": GOOD["bad/1/IM0001.dcm"]}), ZIP, {}, 400, "unsafe path"),
    "unnamed octet-stream": (GOOD_ZIP, {"Content-Type": "application/octet-stream"}, {}, 400, "Unsupported format"),
    "tar sent as a zip": (make_tar(GOOD), ZIP, {}, 400, "is not a zip archive (it is a tar archive)"),
    "archive into a missing project": (GOOD_ZIP, ZIP, {"dest": "/archive/projects/NOPE", "project": ""}, 400,
                                       "Unable to identify project NOPE"),
    "bad dest": (GOOD_ZIP, ZIP, {"dest": "/elsewhere/P1"}, 400, "Parameter dest format error"),
    "unknown handler": (GOOD_ZIP, ZIP, {"import-handler": "nope"}, 404,
                        "Unknown importer implementation specified: nope"),
    "bad overwrite": (GOOD_ZIP, ZIP, {"overwrite": "sometimes"}, 400, "Overwrite flag was not set"),
    "empty text body": (b"", {"Content-Type": "text/plain"}, {}, 400, "request entity size is 0"),
    "form-encoded body": (GOOD_ZIP, {"Content-Type": "application/x-www-form-urlencoded"}, {}, 400,
                          "Unsupported format UNKNOWN: the upload 'upload.unsupported'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_and_changes_nothing(site: SimpleNamespace, case: str) -> None:
    body, headers, params, status, message = BAD_INPUTS[case]
    outside = sorted(p.name for p in site.server.data_dir.parent.iterdir())
    before = snapshot(site.server)
    response = post_import(site, body, headers, **{"project": "P1", **params})
    assert response.status_code == status, response.text
    assert response.text.startswith("<html>") and message in response.text
    assert snapshot(site.server) == before
    assert sorted(p.name for p in site.server.data_dir.parent.iterdir()) == outside
    assert list(site.store.tmp_dir.iterdir()) == []


def test_existing_archive_session_without_overwrite_is_409_and_changes_nothing(site: SimpleNamespace) -> None:
    assert post_import(site, GOOD_ZIP, dest="/archive/projects/P1").status_code == 200
    before = snapshot(site.server)
    again = post_import(site, GOOD_ZIP, dest="/archive/projects/P1")
    assert again.status_code == 409 and "<h3>Session already exists, retry with overwrite enabled</h3>" in again.text
    assert snapshot(site.server) == before


def test_two_studies_onto_one_archive_label_roll_back_the_first(site: SimpleNamespace) -> None:
    both = {**study_files("twoA", series=((1, "A", "MR", 2),)), **study_files("twoB", series=((1, "B", "MR", 2),))}
    before = snapshot(site.server)
    response = post_import(site, make_zip(both), dest="/archive/projects/P1", session="SAME")
    assert response.status_code == 409 and "Session already exists, retry with overwrite enabled" in response.text
    assert snapshot(site.server) == before and site.store.find_experiment("P1", "SAME") is None
    assert list(site.store.tmp_dir.iterdir()) == []


def test_multipart_refusals(site: SimpleNamespace) -> None:
    url = f"{site.url}/data/services/import"
    two = site.http.post(url, files={"a": ("a.zip", GOOD_ZIP), "b": ("b.zip", GOOD_ZIP)}, timeout=30)
    assert two.status_code == 400 and "limited to one uploaded resource" in two.text
    inbody = site.http.post(url, params={"inbody": "true"}, files={"a": ("a.zip", GOOD_ZIP)}, timeout=30)
    assert inbody.status_code == 406
    fields_only = site.http.post(url, files={"project": (None, "P1")}, timeout=30)
    assert fields_only.status_code == 400 and "Unable to identify upload format." in fields_only.text
    assert prearchive_rows(site) == [] and list(site.store.tmp_dir.iterdir()) == []


def test_ignore_unparsable_skips_other_files_and_format_txt_has_no_newline(site: SimpleNamespace) -> None:
    body = make_zip({**GOOD, "README.txt": b"hi", "__MACOSX/._IM0001.dcm": b"junk"})
    response = post_import(site, body, project="P1", format="txt", **{"Ignore-Unparsable": "true"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert response.text.startswith("/data/prearchive/projects/P1/") and not response.text.endswith("\n")


def test_upload_is_spooled_not_held_in_memory(site: SimpleNamespace, tmp_path: Path) -> None:
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as archive:
        for name, data in GOOD.items():
            archive.writestr(name, data)
        with archive.open("padding.bin", "w", force_zip64=True) as padding:
            block = bytes(range(256)) * 4096
            for _ in range(48):  # 48 MiB that is not DICOM
                padding.write(block)
    tracemalloc.start()
    try:
        with open(big, "rb") as body:
            response = site.http.post(f"{site.url}/data/services/import", data=body, headers=ZIP, timeout=120,
                                      params={"project": "P1", "Ignore-Unparsable": "true"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    assert peak < 16 * 1024 * 1024, f"peak Python allocation {peak / 2 ** 20:.1f} MiB for a 48 MiB upload"
    assert list(site.store.tmp_dir.iterdir()) == []
