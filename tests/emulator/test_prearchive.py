"""The prearchive over real HTTP: listings, one session, sub-resources, and the archive/move/delete/rebuild
services with XNAT's answers, statuses and errors (spec §16)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest
import requests
from lxml import etree

from xnatfs.emulator.dicomgen import make_series, make_uid, make_zip
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

COLUMNS = ["project", "timestamp", "lastmod", "uploaded", "scan_date", "scan_time", "subject", "folderName", "name",
           "tag", "status", "url", "autoarchive", "prevent_anon", "prevent_auto_commit", "SOURCE", "VISIT",
           "PROTOCOL", "TIMEZONE"]


def study_zip(tag: str, patient_id: str = "SESS", series: tuple[int, ...] = (1, 2)) -> tuple[bytes, dict[str, bytes]]:
    entries = {}
    for number in series:
        for index, data in enumerate(make_series(
                study_uid=make_uid(tag), series_uid=make_uid(tag, str(number)),
                frame_of_reference_uid=make_uid(tag, "f"),
                patient_name="Pat^Ient", patient_id=patient_id, modality="CT" if number == 9 else "MR",
                series_number=number, series_description=f"S{number}", study_date="20230405", study_time="120000",
                rows=8, columns=8, slices=2), 1):
            entries[f"{number}/{index}.dcm"] = data
    return make_zip(entries), entries


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SimpleNamespace]:
    server = EmulatorServer(tmp_path / "data", users={"admin": "admin", "alice": "alice"})
    server.start()
    for project in ("P1", "P2"):
        server.store.create_project(project)
    with requests.Session() as http:
        http.auth = ("admin", "admin")
        yield SimpleNamespace(server=server, store=server.store, http=http, url=server.url)
    server.stop()


def upload(site: SimpleNamespace, tag: str, project: str = "P1", **params: str) -> str:
    body, _ = study_zip(tag, **params)
    response = site.http.post(f"{site.url}/data/services/import", params={"project": project}, data=body,
                              headers={"Content-Type": "application/zip"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.text.strip()


def rows(site: SimpleNamespace, path: str = "/data/prearchive/projects", **params: str) -> list[dict[str, str]]:
    response = site.http.get(site.url + path, params={"format": "json", **params}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["ResultSet"]) == {"Result"}  # no totalRecords, no title
    return body["ResultSet"]["Result"]


def post(site: SimpleNamespace, service: str, **params: str) -> requests.Response:
    return site.http.post(f"{site.url}/data/services/{service}", params=params, timeout=30)


def test_listings_have_xnat_columns_and_no_meta(site: SimpleNamespace) -> None:
    first = upload(site, "a", "P1")
    second = upload(site, "b", "P2")
    unassigned = upload(site, "c", "NOPE")
    assert {r["url"] for r in rows(site, "/data/prearchive")} == {u[5:] for u in (first, second, unassigned)}
    all_rows = rows(site)
    assert all(list(r) == COLUMNS for r in all_rows) and len(all_rows) == 3
    assert [r["url"] for r in rows(site, "/data/prearchive/projects/P1")] == [first[5:]]
    assert {r["project"] for r in rows(site, "/data/prearchive/projects/P1,P2")} == {"P1", "P2"}
    row = rows(site, "/data/prearchive/projects/P1")[0]
    assert row["timestamp"] == first.split("/")[-2] and len(row["timestamp"]) == 18
    assert row["uploaded"][:4].isdigit() and row["autoarchive"] == "Manual"
    assert (row["prevent_anon"], row["prevent_auto_commit"]) == ("false", "false")
    xml = site.http.get(f"{site.url}/data/prearchive/projects/P1", params={"format": "xml"}, timeout=10)
    root = etree.fromstring(xml.content)
    assert root.tag == "ResultSet" and root.get("totalRecords") is None
    assert [c.text for c in root.iter("column")] == COLUMNS
    csv = site.http.get(f"{site.url}/data/prearchive/projects", params={"format": "csv"}, timeout=10).text
    assert csv.splitlines()[0] == ",".join(COLUMNS) and len(csv.splitlines()) == 4
    tagged = rows(site, "/data/prearchive", tag=make_uid("b"))
    assert [r["project"] for r in tagged] == ["P2"]
    with requests.Session() as alice:
        alice.auth = ("alice", "alice")
        seen = alice.get(f"{site.url}/data/prearchive/projects", params={"format": "json"}, timeout=10).json()
        assert {r["project"] for r in seen["ResultSet"]["Result"]} == {"P1", "P2"}
        denied = alice.get(f"{site.url}/data/prearchive/projects/Unassigned", timeout=10)
        assert denied.status_code == 403 and "does not have access to the requested project" in denied.text
        assert alice.put(f"{site.url}/data/prearchive", timeout=10).status_code == 403


def test_one_session_formats_and_sub_resources(site: SimpleNamespace) -> None:
    uri = upload(site, "one")
    one = site.http.get(site.url + uri, params={"format": "json"}, timeout=10).json()
    assert [r["url"] for r in one["ResultSet"]["Result"]] == [uri[5:]]
    document = etree.fromstring(site.http.get(site.url + uri, timeout=10).content)  # XML is the default
    assert document.tag == "{http://nrg.wustl.edu/xnat}MRSession" and document.get("label") == "SESS"
    assert [s.get("ID") for s in document.iter("{http://nrg.wustl.edu/xnat}scan")] == ["1", "2"]
    bad = site.http.get(site.url + uri, params={"format": "csv"}, timeout=10)
    assert bad.status_code == 400 and "Requested type text/csv is not supported" in bad.text
    missing = site.http.get(f"{site.url}/data/prearchive/projects/P1/20200101_000000000/NOPE", timeout=10)
    assert missing.status_code == 404
    resources = rows(site, uri + "/resources")
    assert resources == [{"category": "scans", "cat_id": n, "label": "DICOM", "file_count": "2",
                          "file_size": resources[0]["file_size"]} for n in ("1", "2")]
    assert rows(site, uri + "/scans/2/resources") == [{"label": "DICOM", "file_count": "2",
                                                       "file_size": resources[1]["file_size"]}]
    scan_zip = site.http.get(f"{site.url}{uri}/scans/2", params={"format": "zip"}, timeout=10)
    assert sorted(zipfile.ZipFile(io.BytesIO(scan_zip.content)).namelist()) == ["2/DICOM/1.dcm", "2/DICOM/2.dcm"]
    assert site.http.get(f"{site.url}{uri}/scans/2", timeout=10).status_code == 400
    assert site.http.delete(f"{site.url}{uri}/scans/2", timeout=10).status_code == 200
    assert [s["ID"] for s in rows(site, uri + "/scans")] == ["1"]
    assert site.http.get(f"{site.url}{uri}/scans/2/resources", timeout=10).status_code == 404


def test_session_post_actions_and_delete(site: SimpleNamespace) -> None:
    uri = upload(site, "act")
    commit = site.http.post(site.url + uri, params={"action": "commit"}, timeout=10)
    assert commit.status_code == 200 and commit.text == uri
    assert commit.headers["Content-Type"].startswith("text/uri-list")
    none = site.http.post(site.url + uri, timeout=10)
    assert none.status_code == 400 and "No action parameter was specified" in none.text
    odd = site.http.post(site.url + uri, params={"action": "dance"}, timeout=10)
    assert odd.status_code == 400 and "unsupported action on prearchive session: dance" in odd.text
    assert site.http.post(site.url + uri, params={"action": "set-status", "status": "ERROR"}, timeout=10).ok
    assert rows(site)[0]["status"] == "ERROR"
    assert site.http.post(site.url + uri, params={"action": "reset-status"}, timeout=10).status_code == 200
    assert rows(site)[0]["status"] == "READY"
    moved = site.http.post(site.url + uri, params={"action": "move", "newProject": "P2"}, timeout=10,
                           allow_redirects=False)
    assert moved.status_code == 301 and moved.text == uri.replace("/P1/", "/P2/")
    uri = moved.text
    assert [(r["project"], r["status"]) for r in rows(site)] == [("P2", "READY")]
    folder = site.server.data_dir / "prearchive" / uri.split("/projects/")[1]
    assert folder.is_dir()
    assert site.http.delete(site.url + uri, timeout=10).status_code == 200
    assert rows(site) == [] and not folder.exists()


def test_archive_round_trip_with_and_without_data_prefix_and_conflicts(site: SimpleNamespace) -> None:
    uri = upload(site, "arc", patient_id="LBL")
    _, entries = study_zip("arc", patient_id="LBL")
    archived = post(site, "archive", src=uri[len("/data"):])
    assert archived.status_code == 200 and archived.headers["Content-Type"].startswith("text/uri-list")
    assert archived.text == "/data/archive/projects/P1/subjects/Pat_Ient/experiments/LBL\r\n"
    assert rows(site) == [] and not (site.server.data_dir / "prearchive" / uri.split("/projects/")[1]).exists()
    session = site.store.find_experiment("P1", "LBL")
    for scan in site.store.list_scans(session.id):
        [resource] = site.store.list_resources(scan)
        got = {f.path: f.disk_path.read_bytes() for f in site.store.list_files(resource.id)}
        assert got == {k.split("/")[1]: v for k, v in entries.items() if k.split("/")[0] == scan.id}
    again = upload(site, "arc", patient_id="LBL")
    conflict = post(site, "archive", src=again)
    assert conflict.status_code == 409 and "Session already exists, retry with overwrite enabled" in conflict.text
    [row] = rows(site)
    assert row["status"] == "CONFLICT"
    appended = post(site, "archive", src=again, overwrite="append")
    assert appended.status_code == 409 and "Session already exists with matching files." in appended.text
    replaced = post(site, "archive", src=again, overwrite="delete")
    assert replaced.status_code == 200 and rows(site) == []


def test_archive_relabels_and_refusals(site: SimpleNamespace) -> None:
    uri = upload(site, "rel")
    relabeled = post(site, "archive", src=uri, project="P2", subject="NEW_SUBJ", session="NEW_EXP")
    assert relabeled.text == "/data/archive/projects/P2/subjects/NEW_SUBJ/experiments/NEW_EXP\r\n"
    assert site.store.find_experiment("P2", "NEW_EXP").xsi_type == "xnat:mrSessionData"
    assert post(site, "archive").status_code == 404
    bad = post(site, "archive", src="/archive/projects/P1/subjects/S/experiments/E")
    assert bad.status_code == 400 and "Invalid src URI" in bad.text
    gone = post(site, "archive", src=uri)
    assert gone.status_code == 404 and "not found" in gone.text
    unassigned = upload(site, "una", "NOPE")
    refused = post(site, "archive", src=unassigned)
    assert refused.status_code == 400 and "Cannot archive sessions from the Unassigned folder." in refused.text
    redirected = site.http.post(f"{site.url}/data/services/archive", allow_redirects=False, timeout=30,
                                params={"src": upload(site, "red"), "redirect": "true"})
    assert redirected.status_code == 303
    assert redirected.headers["Location"].endswith("/data/archive/projects/P1/subjects/Pat_Ient/experiments/SESS")


def test_archive_several_sources_answers_their_rows(site: SimpleNamespace) -> None:
    first, second = upload(site, "m1", patient_id="A"), upload(site, "m2", patient_id="B")
    response = site.http.post(f"{site.url}/data/services/archive", params={"src": [first, second], "format": "json"},
                              timeout=30)
    assert response.status_code == 200
    answered = response.json()["ResultSet"]["Result"]
    assert [r["status"] for r in answered] == ["QUEUED_ARCHIVING"] * 2
    assert {site.store.find_experiment("P1", label).label for label in ("A", "B")} == {"A", "B"}


def test_move_delete_rebuild_services(site: SimpleNamespace) -> None:
    uri = upload(site, "mv")
    moved = post(site, "prearchive/move", src=uri, newProject="P2", **{"async": "false"})
    assert moved.status_code == 200 and moved.headers["Content-Type"].startswith("text/xml")
    queued = etree.fromstring(moved.content)
    assert [c.text for c in queued.iter("cell")][COLUMNS.index("status")] == "QUEUED_MOVING"
    [row] = rows(site)
    assert row["project"] == "P2" and row["status"] == "READY"
    new_uri = "/data" + row["url"]
    assert (site.server.data_dir / "prearchive" / new_uri.split("/projects/")[1] / "SCANS" / "1").is_dir()
    assert post(site, "prearchive/move", src=new_uri, newProject="NOPE").status_code == 404
    assert post(site, "prearchive/move", src=new_uri).status_code == 400
    stale = post(site, "prearchive/move", src=uri, newProject="P1")
    assert stale.status_code == 404 and "No prearchive resource with session SESS" in stale.text
    folder = site.server.data_dir / "prearchive" / new_uri.split("/projects/")[1]
    (folder / "SCANS" / "2" / "DICOM" / "1.dcm").unlink()
    rebuilt = post(site, "prearchive/rebuild", src=new_uri, format="json")
    assert rebuilt.json()["ResultSet"]["Result"][0]["status"] == "QUEUED_BUILDING"
    frames = etree.fromstring(site.http.get(site.url + new_uri, timeout=10).content)
    assert [f.text for f in frames.iter("{http://nrg.wustl.edu/xnat}frames")] == ["2", "1"]
    deleted = post(site, "prearchive/delete", src=new_uri, format="json", **{"async": "true"})
    assert deleted.status_code == 200 and deleted.json()["ResultSet"]["Result"][0]["status"] == "QUEUED_DELETING"
    assert rows(site) == [] and not folder.exists()


def test_move_onto_an_existing_folder_is_409_and_changes_nothing(site: SimpleNamespace) -> None:
    uri = upload(site, "c1")
    project, timestamp, folder = uri.split("/")[-3:]
    squatter = site.server.data_dir / "prearchive" / "P2" / timestamp / folder
    squatter.mkdir(parents=True)
    before = rows(site)
    moved = post(site, "prearchive/move", src=uri, newProject="P2")
    assert moved.status_code == 409
    assert f"A prearchive resource with session {folder} and timestamp {timestamp} already exists" in moved.text
    assert rows(site) == before and rows(site)[0]["status"] == "READY"
    assert (site.server.data_dir / "prearchive" / project / timestamp / folder / "SCANS").is_dir()
    assert list(squatter.iterdir()) == []
