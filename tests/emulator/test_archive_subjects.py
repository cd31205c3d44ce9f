"""Subjects over real HTTP: project and site listings, paging, lookup by ID and label, items JSON/XML,
create (201 + accession ID), update (200 + ID), rename, errors and delete."""

from __future__ import annotations

import csv
import io
import re

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

XNAT = "http://nrg.wustl.edu/xnat"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def rows(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["ResultSet"]["Result"]


def test_project_subject_listing_rows(emulator: EmulatorServer, http: requests.Session) -> None:
    response = http.get(f"{emulator.url}/data/projects/DEMO/subjects?format=json", timeout=10)
    body = response.json()["ResultSet"]
    stored = {s.label: s for s in emulator.store.list_subjects("DEMO")}
    assert body["totalRecords"] == str(len(stored)) == "3"
    for row in body["Result"]:
        assert list(row) == ["ID", "project", "label", "insert_date", "insert_user", "URI"]
        subject = stored[row["label"]]
        assert row["ID"] == subject.id and row["project"] == "DEMO" and row["insert_user"] == "admin"
        assert row["URI"] == f"/data/subjects/{subject.id}"  # not the project-scoped path (spec §9.1)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", row["insert_date"])


def test_site_subject_listing_and_paging(emulator: EmulatorServer, http: requests.Session) -> None:
    everything = rows(http.get(f"{emulator.url}/data/subjects?format=json", timeout=10))
    assert {r["label"] for r in everything} >= {"DEMO_001", "DEMO_002", "DEMO_003", "S2_001", "S2_002"}
    paged = http.get(f"{emulator.url}/data/subjects", params={"limit": 2, "offset": 1, "format": "json"},
                     timeout=10).json()["ResultSet"]
    assert paged["Result"] == everything[1:3]
    assert "totalRecords" not in paged  # XNAT omits it once paged


def test_subject_columns_and_filters(emulator: EmulatorServer, http: requests.Session) -> None:
    path = "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/handedness"
    result = rows(http.get(f"{emulator.url}/data/archive/projects/DEMO/subjects",
                           params={"columns": f"ID,label,gender,yob,{path}", "gender": "female",
                                   "format": "json"}, timeout=10))
    assert sorted(r["label"] for r in result) == ["DEMO_002", "DEMO_003"]
    row = next(r for r in result if r["label"] == "DEMO_002")
    assert row == {"ID": row["ID"], "label": "DEMO_002", "gender": "female", "yob": "1985",
                   "handedness": "left", "URI": row["URI"]}


def test_subject_listing_csv(emulator: EmulatorServer, http: requests.Session) -> None:
    response = http.get(f"{emulator.url}/data/projects/STUDY2/subjects",
                        params={"format": "csv", "columns": "ID,label"}, timeout=10)
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["label"] for r in parsed] == ["S2_001", "S2_002"]
    assert list(parsed[0]) == ["ID", "label", "URI"]


def test_subject_lookup_by_label_id_and_accession_only(emulator: EmulatorServer, http: requests.Session) -> None:
    subject = emulator.store.find_subject("DEMO", "DEMO_001")
    urls = ["/data/projects/DEMO/subjects/DEMO_001", f"/data/projects/DEMO/subjects/{subject.id}",
            "/data/archive/projects/DEMO/subjects/DEMO_001", f"/data/subjects/{subject.id}",
            f"/data/archive/subjects/{subject.id}"]
    for url in urls:
        item = http.get(f"{emulator.url}{url}?format=json", timeout=10).json()["items"][0]
        assert item["data_fields"]["ID"] == subject.id, url
    by_label = http.get(f"{emulator.url}/data/subjects/DEMO_001?format=json", timeout=10)
    assert by_label.status_code == 404
    assert "you must specify the accession number" in by_label.text
    missing = http.get(f"{emulator.url}/data/projects/DEMO/subjects/NOBODY?format=json", timeout=10)
    assert missing.status_code == 404
    assert ("The project DEMO does not contain a subject identifiable by the ID or label NOBODY."
            in missing.text)


def test_subject_items_json(emulator: EmulatorServer, http: requests.Session) -> None:
    item = http.get(f"{emulator.url}/data/projects/DEMO/subjects/DEMO_001?format=json", timeout=10).json()["items"][0]
    assert item["meta"] == {"isHistory": False, "xsi:type": "xnat:subjectData",
                            "start_date": item["meta"]["start_date"]}
    assert item["data_fields"]["label"] == "DEMO_001" and item["data_fields"]["group"] == "control"
    children = {c["field"]: c["items"] for c in item["children"]}
    (demographics,) = children["demographics"]
    assert demographics["meta"]["xsi:type"] == "xnat:demographicData"
    assert demographics["data_fields"] == {"gender": "male", "yob": 1970, "handedness": "right"}
    assert children["fields/field"][0]["data_fields"] == {"field": "pilot", "name": "cohort"}
    assert [r["data_fields"]["label"] for r in children["resources/resource"]] == ["consent"]
    assert {e["data_fields"]["label"] for e in children["experiments/experiment"]} == {"DEMO_001_MR_1",
                                                                                       "DEMO_001_CT_1"}


def test_subject_xml_document(emulator: EmulatorServer, http: requests.Session) -> None:
    response = http.get(f"{emulator.url}/data/projects/DEMO/subjects/DEMO_002?format=xml", timeout=10)
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{XNAT}}}Subject"
    assert (root.get("label"), root.get("project")) == ("DEMO_002", "DEMO")
    demographics = root.find(f"{{{XNAT}}}demographics")
    assert demographics.get(f"{{{XSI}}}type") == "xnat:demographicData"
    assert demographics.findtext(f"{{{XNAT}}}gender") == "female"
    # without format= a single object negotiates HTML then XML (spec §3.1): Accept text/xml → the document
    url = f"{emulator.url}/data/projects/DEMO/subjects/DEMO_002"
    assert http.get(url, headers={"Accept": "text/xml"}, timeout=10).content == response.content


def test_subject_create_update_rename_delete(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    base = f"{fresh_emulator.url}/data/projects/P1/subjects"
    assert fresh_http.put(f"{fresh_emulator.url}/data/projects/P1", timeout=10).status_code == 200
    created = fresh_http.put(f"{base}/SUBJ1", params={"xsiType": "xnat:subjectData", "gender": "female",
                                                      "yob": "1980", "group": "control"}, timeout=10)
    assert created.status_code == 201
    assert created.headers["Content-Type"].startswith("text/plain")
    subject_id = created.text
    assert re.fullmatch(r"XNAT_S\d{5}", subject_id)
    stored = fresh_emulator.store.get_subject(subject_id)
    assert (stored.label, stored.fields["gender"], stored.fields["group"]) == ("SUBJ1", "female", "control")

    updated = fresh_http.put(f"{fresh_emulator.url}/data/archive/projects/P1/subjects/{subject_id}",
                             params={"xsiType": "xnat:subjectData",
                                     "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/handedness": "left",
                                     "xnat:subjectData/fields/field[name=site]/field": "north"}, timeout=10)
    assert (updated.status_code, updated.text) == (200, subject_id)
    stored = fresh_emulator.store.get_subject(subject_id)
    assert stored.fields["handedness"] == "left" and stored.fields["fields"] == {"site": "north"}

    renamed = fresh_http.put(f"{base}/SUBJ1", params={"label": "SUBJ1B"}, timeout=10)
    assert (renamed.status_code, renamed.text) == (200, "")
    assert fresh_http.get(f"{base}/SUBJ1?format=json", timeout=10).status_code == 404
    renamed_item = fresh_http.get(f"{base}/SUBJ1B?format=json", timeout=10).json()["items"][0]
    assert renamed_item["data_fields"]["ID"] == subject_id

    second = fresh_http.put(f"{base}/SUBJ2", timeout=10)
    assert second.status_code == 201 and second.text != subject_id
    in_use = fresh_http.put(f"{base}/SUBJ2", params={"label": "SUBJ1B"}, timeout=10)
    assert in_use.status_code == 409 and "Specified label is already in use." in in_use.text
    moved = fresh_http.put(f"{base}/SUBJ2", params={"project": "OTHER"}, timeout=10)
    assert moved.status_code == 409 and "Project must be modified through separate URI." in moved.text
    new_id = fresh_http.put(f"{base}/SUBJ2", params={"ID": "XNAT_S99999"}, timeout=10)
    assert new_id.status_code == 400 and "ID cannot be modified" in new_id.text

    deleted = fresh_http.delete(f"{base}/SUBJ1B", params={"removeFiles": "true"}, timeout=10)
    assert (deleted.status_code, deleted.text) == (200, "")
    assert fresh_http.get(f"{fresh_emulator.url}/data/subjects/{subject_id}?format=json", timeout=10).status_code == 404
    assert [r["label"] for r in rows(fresh_http.get(f"{base}?format=json", timeout=10))] == ["SUBJ2"]


def test_subject_put_errors(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    missing_project = fresh_http.put(f"{fresh_emulator.url}/data/projects/NOPE/subjects/S1", timeout=10)
    assert missing_project.status_code == 404 and "Unable to identify project NOPE" in missing_project.text
    no_project = fresh_http.put(f"{fresh_emulator.url}/data/subjects/S1", timeout=10)
    assert no_project.status_code == 422
    assert "Submitted subject record must include the project attribute." in no_project.text
    assert fresh_http.put(f"{fresh_emulator.url}/data/projects/P1", timeout=10).status_code == 200
    created = fresh_http.put(f"{fresh_emulator.url}/data/subjects/S1", params={"project": "P1"}, timeout=10)
    assert created.status_code == 201
    assert fresh_emulator.store.get_subject(created.text).label == "S1"
    assert fresh_http.delete(f"{fresh_emulator.url}/data/subjects/NOPE", timeout=10).status_code == 404


def test_subject_created_from_xml_body(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    document = (b'<xnat:Subject xmlns:xnat="http://nrg.wustl.edu/xnat" '
                b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" project="P1" label="XS1" group="g1">'
                b'<xnat:demographics xsi:type="xnat:demographicData"><xnat:gender>male</xnat:gender>'
                b'<xnat:dob>1970-05-06</xnat:dob></xnat:demographics>'
                b'<xnat:fields><xnat:field name="cohort">a</xnat:field></xnat:fields></xnat:Subject>')
    assert fresh_http.put(f"{fresh_emulator.url}/data/projects/P1", timeout=10).status_code == 200
    created = fresh_http.put(f"{fresh_emulator.url}/data/projects/P1/subjects/XS1", data=document,
                             headers={"Content-Type": "application/xml"}, timeout=10)
    assert created.status_code == 201
    stored = fresh_emulator.store.get_subject(created.text)
    assert stored.label == "XS1"
    assert stored.fields == {"group": "g1", "gender": "male", "dob": "1970-05-06", "fields": {"cohort": "a"}}
    broken = fresh_http.put(f"{fresh_emulator.url}/data/projects/P1/subjects/XS2", data=b"<not xml",
                            headers={"Content-Type": "text/xml"}, timeout=10)
    assert broken.status_code == 422
