"""Resources over real HTTP: list, catalog XML, create and delete under every kind of owner (spec §12)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

RESOURCE_KEYS = {"xnat_abstractresource_id", "label", "element_name", "category", "cat_id", "cat_desc",
                 "file_count", "file_size", "tags", "content", "format"}
CAT = "{http://nrg.wustl.edu/catalog}"


@pytest.fixture(scope="module")
def archive(module_emulator: EmulatorServer, module_http: requests.Session) -> SimpleNamespace:
    """A small archive with a resource on every kind of owner, built through the store."""
    server = module_emulator
    store = server.store
    store.create_project("PRJ")
    subject = store.create_subject("PRJ", "SUBJ")
    session = store.create_experiment("PRJ", subject.id, "SESS", "xnat:mrSessionData")
    scan = store.create_scan(session.id, "3", fields={"type": "T1w MPRAGE"})
    recon = store.create_reconstruction(session.id, "R1", fields={"type": "bias"})
    assessor = store.create_assessor(session.id, "SESS_QC")
    made = {}
    for name, owner in (("project", store.get_project("PRJ")), ("subject", subject), ("session", session),
                        ("scan", scan), ("recon", recon), ("assessor", assessor)):
        resource = store.create_resource(owner, f"R_{name}", format="TXT", content=name, tags="a,b=c")
        store.add_file(resource.id, "one.txt", b"1")
        store.add_file(resource.id, "sub/two.txt", b"22")
        made[name] = resource
    return SimpleNamespace(server=server, url=server.url, http=module_http, subject=subject, session=session,
                           scan=scan, recon=recon, assessor=assessor, resources=made)


def owner_paths(a: SimpleNamespace) -> dict[str, list[str]]:
    s, e = a.subject.id, a.session.id
    return {
        "project": ["/data/projects/PRJ", "/data/archive/projects/PRJ", "/REST/projects/PRJ"],
        "subject": ["/data/projects/PRJ/subjects/SUBJ", f"/data/projects/PRJ/subjects/{s}", f"/data/subjects/{s}"],
        "session": ["/data/projects/PRJ/subjects/SUBJ/experiments/SESS", "/data/projects/PRJ/experiments/SESS",
                    f"/data/experiments/{e}", f"/data/archive/experiments/{e}"],
        "scan": [f"/data/experiments/{e}/scans/3", "/data/projects/PRJ/subjects/SUBJ/experiments/SESS/scans/3"],
        "recon": [f"/data/experiments/{e}/reconstructions/R1", f"/data/experiments/{e}/reconstructions/R1/out"],
        "assessor": [f"/data/experiments/{e}/assessors/SESS_QC", f"/data/experiments/{e}/assessors/{a.assessor.id}/out",
                     f"/data/experiments/{a.assessor.id}"],
    }


def test_every_owner_lists_its_resource_with_xnat_keys(archive: SimpleNamespace) -> None:
    for name, paths in owner_paths(archive).items():
        expected = archive.resources[name]
        for path in paths:
            response = archive.http.get(f"{archive.url}{path}/resources", params={"format": "json"}, timeout=10)
            assert response.status_code == 200, path
            body = response.json()["ResultSet"]
            assert body["title"] == "Resources" and body["totalRecords"] == "1", path
            (row,) = body["Result"]
            assert set(row) == RESOURCE_KEYS, path
            assert all(isinstance(v, str) for v in row.values())
            assert row["xnat_abstractresource_id"] == str(expected.id) and row["label"] == f"R_{name}"
            assert row["element_name"] == "xnat:resourceCatalog"
            assert (row["file_count"], row["file_size"]) == ("2", "3")
            assert (row["format"], row["content"], row["tags"]) == ("TXT", name, "a,b=c")


def test_category_columns_follow_the_owner(archive: SimpleNamespace) -> None:
    def row(path: str) -> dict:
        return archive.http.get(f"{archive.url}{path}/resources", timeout=10).json()["ResultSet"]["Result"][0]

    e = archive.session.id
    assert [row("/data/projects/PRJ")[k] for k in ("category", "cat_id", "cat_desc")] == ["resources", "", " "]
    assert [row(f"/data/experiments/{e}")[k] for k in ("category", "cat_id", "cat_desc")] == ["resources", e, " "]
    assert [row(f"/data/experiments/{e}/scans/3")[k] for k in ("category", "cat_id", "cat_desc")] == \
        ["scans", "3", "T1w MPRAGE"]
    assert row(f"/data/experiments/{e}/reconstructions/R1")["category"] == "reconstructions"
    assert row(f"/data/experiments/{e}/assessors/SESS_QC")["category"] == "assessors"


def test_columns_parameter_is_ignored_and_csv_xml_have_the_same_columns(archive: SimpleNamespace) -> None:
    url = f"{archive.url}/data/projects/PRJ/resources"
    as_json = archive.http.get(url, params={"format": "json", "columns": "label"}, timeout=10).json()
    assert set(as_json["ResultSet"]["Result"][0]) == RESOURCE_KEYS
    csv_text = archive.http.get(url, params={"format": "csv"}, timeout=10).text
    header, line = csv_text.splitlines()
    assert header.split(",") == ["xnat_abstractresource_id", "label", "element_name", "category", "cat_id",
                                 "cat_desc", "file_count", "file_size", "tags", "content", "format"]
    assert "R_project" in line
    xml = etree.fromstring(archive.http.get(url, params={"format": "xml"}, timeout=10).content)
    assert xml.get("title") == "Resources"
    assert [c.text for c in xml.iter("column")][1] == "label"


def test_experiment_resources_only_its_own_unless_all(archive: SimpleNamespace) -> None:
    url = f"{archive.url}/data/experiments/{archive.session.id}/resources"
    own = archive.http.get(url, timeout=10).json()["ResultSet"]["Result"]
    assert [r["label"] for r in own] == ["R_session"]
    everything = archive.http.get(url, params={"all": "true"}, timeout=10).json()["ResultSet"]["Result"]
    assert sorted(r["label"] for r in everything) == ["R_assessor", "R_recon", "R_scan", "R_session"]


def test_catalog_is_xml_whatever_format_says(archive: SimpleNamespace) -> None:
    resource = archive.resources["scan"]
    for ref in ("R_scan", str(resource.id)):
        response = archive.http.get(f"{archive.url}/data/experiments/{archive.session.id}/scans/3/resources/{ref}",
                                    params={"format": "json"}, timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/xml")
        # xnatpy recognises a catalog by exactly these first bytes
        assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<cat:Catalog')
        root = etree.fromstring(response.content)
        assert root.tag == f"{CAT}Catalog"
        entries = {e.get("URI"): e for e in root.iter(f"{CAT}entry")}
        assert set(entries) == {"one.txt", "sub/two.txt"}
        assert entries["sub/two.txt"].get("name") == "two.txt"
        assert entries["one.txt"].get("digest") == "c4ca4238a0b923820dcc509a6f75849b"  # md5("1")


def test_missing_catalog_and_missing_owner_are_404(archive: SimpleNamespace) -> None:
    missing = archive.http.get(f"{archive.url}/data/projects/PRJ/resources/NOPE", timeout=10)
    assert missing.status_code == 404 and "Unable to find the specified catalog." in missing.text
    assert missing.text.startswith("<html>")
    assert archive.http.get(f"{archive.url}/data/projects/NOPE/resources", timeout=10).status_code == 404
    assert archive.http.get(f"{archive.url}/data/experiments/{archive.session.id}/scans/99/resources",
                            timeout=10).status_code == 404


def test_create_resource_on_every_owner_then_conflict(fresh_emulator: EmulatorServer,
                                                      fresh_http: requests.Session) -> None:
    store = fresh_emulator.store
    store.create_project("P")
    subject = store.create_subject("P", "S")
    session = store.create_experiment("P", subject.id, "E")
    store.create_scan(session.id, "1")
    store.create_reconstruction(session.id, "R")
    store.create_assessor(session.id, "QC")
    owners = ["/data/projects/P", "/data/projects/P/subjects/S", "/data/projects/P/subjects/S/experiments/E",
              "/data/projects/P/experiments/E/scans/1", f"/data/experiments/{session.id}/reconstructions/R",
              f"/data/experiments/{session.id}/assessors/QC"]
    for i, owner in enumerate(owners):
        method = fresh_http.put if i % 2 else fresh_http.post
        created = method(f"{fresh_emulator.url}{owner}/resources/NIFTI",
                         params={"format": "NIFTI", "content": "T1_RAW", "tags": "x,y", "description": "d"},
                         timeout=10)
        assert created.status_code == 200 and created.text == "", owner
        rows = fresh_http.get(f"{fresh_emulator.url}{owner}/resources", timeout=10).json()["ResultSet"]["Result"]
        assert [(r["label"], r["format"], r["content"], r["tags"], r["file_count"]) for r in rows] == \
            [("NIFTI", "NIFTI", "T1_RAW", "x,y", "0")], owner
        again = fresh_http.put(f"{fresh_emulator.url}{owner}/resources/NIFTI", timeout=10)
        assert again.status_code == 409 and "Specified resource already exists." in again.text
    missing_owner = fresh_http.put(f"{fresh_emulator.url}/data/projects/NOPE/resources/X", timeout=10)
    assert missing_owner.status_code == 404


def test_delete_resource_removes_its_files(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    store = fresh_emulator.store
    project = store.create_project("P")
    resource = store.create_resource(project, "DOCS")
    row = store.add_file(resource.id, "deep/a.txt", b"abc")
    assert row.disk_path.exists()
    deleted = fresh_http.delete(f"{fresh_emulator.url}/data/projects/P/resources/DOCS", timeout=10)
    assert deleted.status_code == 200
    assert fresh_http.get(f"{fresh_emulator.url}/data/projects/P/resources", timeout=10).json()[
        "ResultSet"]["Result"] == []
    assert fresh_http.get(f"{fresh_emulator.url}/data/projects/P/resources/DOCS", timeout=10).status_code == 404
    # XNAT's CatalogResource.handleDelete returns without a status when nothing matched: 200
    assert fresh_http.delete(f"{fresh_emulator.url}/data/projects/P/resources/DOCS", timeout=10).status_code == 200
    assert not row.disk_path.exists()
    assert store.get_resource(resource.id) is None
