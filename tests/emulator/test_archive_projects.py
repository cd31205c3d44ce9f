"""Projects over real HTTP: listings in json/csv/xml, one project as items JSON and XML, create/update/delete."""

from __future__ import annotations

import csv
import io

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

XNAT = "http://nrg.wustl.edu/xnat"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PROJECT_COLUMNS = ["ID", "secondary_ID", "name", "description", "pi_firstname", "pi_lastname", "URI"]


def rows(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["ResultSet"]["Result"]


def test_project_listing_has_xnat_default_columns_all_strings(emulator: EmulatorServer,
                                                              http: requests.Session) -> None:
    response = http.get(f"{emulator.url}/data/projects", params={"format": "json"}, timeout=10)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()["ResultSet"]
    assert body["totalRecords"] == str(len(body["Result"]))
    by_id = {row["ID"]: row for row in body["Result"]}
    assert {"DEMO", "STUDY2"} <= set(by_id)
    demo = by_id["DEMO"]
    assert list(demo) == PROJECT_COLUMNS
    assert all(isinstance(value, str) for row in body["Result"] for value in row.values())
    assert demo["URI"] == "/data/projects/DEMO"
    assert demo["name"] == emulator.store.get_project("DEMO").name
    assert demo["secondary_ID"] == "Demo"


def test_listing_is_the_same_under_archive_and_rest_prefixes(emulator: EmulatorServer,
                                                             http: requests.Session) -> None:
    plain = rows(http.get(f"{emulator.url}/data/projects?format=json", timeout=10))
    for prefix in ("/data/archive", "/REST", "/REST/archive"):
        assert rows(http.get(f"{emulator.url}{prefix}/projects?format=json", timeout=10)) == plain


def test_project_listing_csv_and_xml_carry_the_same_rows(emulator: EmulatorServer, http: requests.Session) -> None:
    expected = rows(http.get(f"{emulator.url}/data/projects?format=json", timeout=10))
    as_csv = http.get(f"{emulator.url}/data/projects?format=csv", timeout=10)
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert list(csv.DictReader(io.StringIO(as_csv.text))) == expected
    as_xml = http.get(f"{emulator.url}/data/projects?format=xml", timeout=10)
    root = etree.fromstring(as_xml.content)
    assert root.tag == "ResultSet" and root.get("totalRecords") == str(len(expected))
    columns = [c.text for c in root.iter("column")]
    assert columns == PROJECT_COLUMNS
    table = [dict(zip(columns, [c.text or "" for c in row.iter("cell")])) for row in root.iter("row")]
    assert table == expected


def test_columns_shortcuts_xml_paths_and_unknown_names(emulator: EmulatorServer, http: requests.Session) -> None:
    result = rows(http.get(f"{emulator.url}/data/projects",
                           params={"columns": "ID,xnat:projectData/name,keywords,nonsense", "format": "json"},
                           timeout=10))
    demo = next(r for r in result if r["ID"] == "DEMO")
    # the xml path is named by its shortcut, the unknown name is dropped, URI is always there
    assert demo == {"ID": "DEMO", "name": "Demo project", "keywords": "demo synthetic MR CT",
                    "URI": "/data/projects/DEMO"}


def test_filter_by_field_with_wildcard(emulator: EmulatorServer, http: requests.Session) -> None:
    result = rows(http.get(f"{emulator.url}/data/projects", params={"ID": "STU*", "format": "json"}, timeout=10))
    assert [r["ID"] for r in result] == ["STUDY2"]


def test_one_project_as_items_json(emulator: EmulatorServer, http: requests.Session) -> None:
    body = http.get(f"{emulator.url}/data/projects/DEMO?format=json", timeout=10).json()
    (item,) = body["items"]
    assert item["meta"]["xsi:type"] == "xnat:projectData" and item["meta"]["isHistory"] is False
    assert item["data_fields"]["ID"] == "DEMO"
    assert item["data_fields"]["description"] == emulator.store.get_project("DEMO").description
    resources = next(c for c in item["children"] if c["field"] == "resources/resource")["items"]
    protocols = next(r for r in resources if r["data_fields"]["label"] == "protocols")
    resource = emulator.store.find_resource(emulator.store.get_project("DEMO"), "protocols")
    count, size = emulator.store.file_stats(resource.id)
    assert protocols["meta"]["xsi:type"] == "xnat:resourceCatalog"
    assert protocols["data_fields"]["xnat_abstractresource_id"] == resource.id
    assert (protocols["data_fields"]["file_count"], protocols["data_fields"]["file_size"]) == (count, size)


def test_one_project_as_xml_document(emulator: EmulatorServer, http: requests.Session) -> None:
    response = http.get(f"{emulator.url}/data/archive/projects/DEMO?format=xml", timeout=10)
    assert response.headers["Content-Type"].startswith("text/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"')
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{XNAT}}}Project" and root.get("ID") == "DEMO"
    assert root.get(f"{{{XSI}}}schemaLocation").startswith(f"{XNAT} {emulator.url}/schemas/xnat/xnat.xsd")
    assert root.findtext(f"{{{XNAT}}}name") == "Demo project"
    assert root.find(f"{{{XNAT}}}resources/{{{XNAT}}}resource").get(f"{{{XSI}}}type") == "xnat:resourceCatalog"


def test_unknown_project_is_404_with_xnat_message(emulator: EmulatorServer, http: requests.Session) -> None:
    response = http.get(f"{emulator.url}/data/projects/NOPE?format=json", timeout=10)
    assert response.status_code == 404
    assert response.text.startswith("<html>")
    assert "<h3>Unable to find the specified experiment.</h3>" in response.text


def test_non_admin_cannot_create_a_project(emulator: EmulatorServer) -> None:
    response = requests.put(f"{emulator.url}/data/projects/ALICEPROJ", auth=("alice", "alice-secret"), timeout=10)
    assert response.status_code == 403
    assert emulator.store.get_project("ALICEPROJ") is None


def test_project_create_update_delete_round_trip(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    url = f"{fresh_emulator.url}/data/projects"
    created = fresh_http.put(f"{url}/P1", params={"name": "Project one", "secondary_ID": "P-one",
                                                  "xnat:projectData/description": "first"}, timeout=10)
    assert created.status_code == 200 and created.text == ""
    (row,) = rows(fresh_http.get(f"{url}?format=json", timeout=10))
    assert row == {"ID": "P1", "secondary_ID": "P-one", "name": "Project one", "description": "first",
                   "pi_firstname": "", "pi_lastname": "", "URI": "/data/projects/P1"}
    updated = fresh_http.put(f"{fresh_emulator.url}/data/archive/projects/P1",
                             params={"xsiType": "xnat:projectData", "description": "changed", "pi_lastname": "Curie",
                                     "xnat:projectData/fields/field[name=site]/field": "north"}, timeout=10)
    assert updated.status_code == 200
    item = fresh_http.get(f"{url}/P1?format=json", timeout=10).json()["items"][0]
    assert item["data_fields"]["description"] == "changed"
    children = {c["field"]: c["items"] for c in item["children"]}
    assert children["PI"][0]["data_fields"] == {"lastname": "Curie"}
    assert children["fields/field"][0]["data_fields"] == {"field": "north", "name": "site"}
    assert fresh_http.get(f"{url}?columns=ID,pi_lastname&format=json", timeout=10).json()[
        "ResultSet"]["Result"][0]["pi_lastname"] == "Curie"
    deleted = fresh_http.delete(f"{url}/P1", params={"removeFiles": "true"}, timeout=10)
    assert deleted.status_code == 200 and deleted.text == ""
    assert fresh_http.get(f"{url}/P1?format=json", timeout=10).status_code == 404
    assert fresh_http.delete(f"{url}/P1", timeout=10).status_code == 404


def test_project_id_rules_and_conflicts(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    url = f"{fresh_emulator.url}/data/projects"
    bad = fresh_http.put(f"{url}/bad.id", timeout=10)
    assert bad.status_code == 417 and "Invalid character in project ID." in bad.text
    assert fresh_http.put(f"{url}/P1", params={"name": "Shared name"}, timeout=10).status_code == 200
    clash = fresh_http.put(f"{url}/P2", params={"name": "Shared name"}, timeout=10)
    assert clash.status_code == 409 and "conflicts with existing projects: P1" in clash.text
    assert fresh_emulator.store.get_project("P2") is None


def test_post_xml_document_creates_a_project(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    document = (b'<?xml version="1.0"?>'
                b'<xnat:Project xmlns:xnat="http://nrg.wustl.edu/xnat" ID="XMLP" secondary_ID="xml">'
                b'<xnat:name>From XML</xnat:name><xnat:description>described</xnat:description>'
                b'<xnat:keywords>k1 k2</xnat:keywords></xnat:Project>')
    hostile = document.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>', 1) \
        .replace(b"XMLP", b"XXEP").replace(b"described", b"&secret;")
    url = f"{fresh_emulator.url}/data/projects"
    refused = fresh_http.post(url, data=hostile, headers={"Content-Type": "text/xml"}, timeout=10)
    assert refused.status_code == 422 and "DOCTYPE is disallowed" in refused.text and "root:" not in refused.text
    assert fresh_emulator.store.get_project("XXEP") is None
    created = fresh_http.post(url, data=document, headers={"Content-Type": "text/xml"}, timeout=10)
    assert created.status_code == 200
    assert created.headers["Location"].endswith("/data/projects/XMLP")
    project = fresh_emulator.store.get_project("XMLP")
    assert (project.name, project.secondary_id, project.fields["keywords"]) == ("From XML", "xml", "k1 k2")
    assert project.description == "described"
    again = fresh_http.post(url, data=document, headers={"Content-Type": "text/xml"}, timeout=10)
    assert again.status_code == 409 and "Project already exists." in again.text
    assert fresh_http.post(url, timeout=10).status_code == 417


def test_project_settings_by_path(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    """accessibility, prearchive_code, quarantine_code, current_arc (ProjectResource filepath branches)."""
    url = f"{fresh_emulator.url}/data/projects"
    assert fresh_http.put(f"{url}/P1", params={"accessibility": "public"}, timeout=10).status_code == 200
    assert fresh_http.put(f"{url}/P2", params={"accessibility": "secret"}, timeout=10).status_code == 400
    assert fresh_emulator.store.get_project("P2") is None
    access = fresh_http.get(f"{url}/P1/accessibility", timeout=10)
    assert (access.status_code, access.text, access.headers["Content-Type"].split(";")[0]) == (
        200, "public", "text/plain")
    assert fresh_http.get(f"{url}/P1/accessibility", headers={"Accept": "application/json"},
                          timeout=10).status_code == 406
    assert fresh_http.put(f"{url}/P1/accessibility/protected", timeout=10).text == "protected"
    assert fresh_http.put(f"{url}/P1/accessibility/bogus", timeout=10).status_code == 400
    code = fresh_http.get(f"{url}/P1/prearchive_code", timeout=10)
    assert code.text == "0" and code.headers["Content-Type"].startswith("text/html")  # the object's variants
    assert fresh_http.get(f"{url}/P1/prearchive_code", params={"format": "xml"}, timeout=10).headers[
        "Content-Type"].startswith("text/xml")
    assert fresh_http.put(f"{url}/P1/prearchive_code/5", timeout=10).status_code == 200
    assert fresh_http.put(f"{url}/P1/quarantine_code/true", timeout=10).status_code == 200
    bad = fresh_http.put(f"{url}/P1/prearchive_code/five", timeout=10)
    assert bad.status_code == 400 and "Prearchive code must be an integer." in bad.text
    assert [fresh_http.get(f"{url}/P1/{k}", timeout=10).text
            for k in ("prearchive_code", "quarantine_code")] == ["5", "1"]
    assert fresh_http.put(f"{url}/P1/current_arc/arc002", timeout=10).status_code == 200
    assert fresh_http.get(f"{url}/P1/current_arc", timeout=10).text == "arc002"
    assert fresh_http.delete(f"{url}/P1/prearchive_code", timeout=10).status_code == 400
    assert fresh_http.get(f"{url}/NOPE/prearchive_code", timeout=10).status_code == 404
    # settings are never fields: not in the listing, the item, or the document
    row = fresh_http.get(url, params={"columns": "ID,settings"}, timeout=10).json()["ResultSet"]["Result"][0]
    assert set(row) == {"ID", "URI"}
    item = fresh_http.get(f"{url}/P1", params={"format": "json"}, timeout=10).json()["items"][0]
    assert "settings" not in item["data_fields"]
    fresh_emulator.stop()
    restarted = EmulatorServer(fresh_emulator.data_dir, users={"admin": "admin", "alice": "alice"})
    restarted.start()
    try:
        assert requests.get(f"{restarted.url}/data/projects/P1/prearchive_code", auth=("admin", "admin"),
                            timeout=10).text == "5"  # kept across a restart
        refused = requests.put(f"{restarted.url}/data/projects/P1/accessibility/public", auth=("alice", "alice"),
                               timeout=10)
        assert refused.status_code == 403
    finally:
        restarted.stop()
