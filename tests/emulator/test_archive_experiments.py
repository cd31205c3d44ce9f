"""Experiments over real HTTP: project/subject/site listings with XNAT's columns and filters, one session
as items JSON (scans with their resources, assessors, reconstructions) and XML, create/update/delete."""

from __future__ import annotations

import re

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

XNAT = "http://nrg.wustl.edu/xnat"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PROJECT_LIST_COLUMNS = ["ID", "project", "date", "xsiType", "label", "insert_date", "xnat:subjectassessordata/id",
                        "URI"]


def rows(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["ResultSet"]["Result"]


def children(item: dict) -> dict[str, list[dict]]:
    return {c["field"]: c["items"] for c in item["children"]}


def test_project_experiment_listing(emulator: EmulatorServer, http: requests.Session) -> None:
    body = http.get(f"{emulator.url}/data/projects/DEMO/experiments?format=json", timeout=10).json()["ResultSet"]
    sessions = emulator.store.list_experiments("DEMO")  # sessions only: assessors are not subject assessors
    assert body["totalRecords"] == str(len(sessions)) == "4"
    by_label = {row["label"]: row for row in body["Result"]}
    assert set(by_label) == {e.label for e in sessions}
    row = by_label["DEMO_001_MR_1"]
    stored = emulator.store.find_experiment("DEMO", "DEMO_001_MR_1")
    assert list(row) == PROJECT_LIST_COLUMNS
    assert row == {"ID": stored.id, "project": "DEMO", "date": "2024-01-15", "xsiType": "xnat:mrSessionData",
                   "label": "DEMO_001_MR_1", "insert_date": stored.insert_date,
                   "xnat:subjectassessordata/id": stored.id, "URI": f"/data/experiments/{stored.id}"}
    assert by_label["DEMO_001_CT_1"]["xsiType"] == "xnat:ctSessionData"


def test_experiment_listing_joins_the_subjects_fields_when_a_column_or_filter_names_one(
        emulator: EmulatorServer, http: requests.Session) -> None:
    """``xnat:subjectData/...`` in ``columns=`` or as a filter reads the session's subject (XNAT joins
    the table); the emulator fills those cells only when asked (issue 13: a plain listing of a big
    project does not copy every subject's fields into every row)."""
    gender = "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender"
    url = f"{emulator.url}/data/projects/DEMO/experiments"
    listed = rows(http.get(url, params={"columns": f"ID,label,{gender}", "format": "json"}, timeout=10))
    store = emulator.store
    expected = {e.label: store.get_subject(e.subject_id).fields["gender"] for e in store.list_experiments("DEMO")}
    assert {r["label"]: r[gender.lower()] for r in listed} == expected
    female = rows(http.get(url, params={gender: "female", "format": "json"}, timeout=10))
    assert sorted(r["label"] for r in female) == sorted(k for k, v in expected.items() if v == "female")
    plain = rows(http.get(url, params={"format": "json"}, timeout=10))
    assert all(gender.lower() not in r for r in plain)


def test_subject_experiment_listing_and_type_filter(emulator: EmulatorServer, http: requests.Session) -> None:
    url = f"{emulator.url}/data/archive/projects/DEMO/subjects/DEMO_001/experiments"
    labels = {r["label"] for r in rows(http.get(url, params={"format": "json"}, timeout=10))}
    assert labels == {"DEMO_001_MR_1", "DEMO_001_CT_1"}
    only_ct = rows(http.get(url, params={"xsiType": "xnat:ctSessionData", "format": "json"}, timeout=10))
    assert [r["label"] for r in only_ct] == ["DEMO_001_CT_1"]
    assert "xnat:ctsessiondata/id" in only_ct[0]
    xnatpy_columns = rows(http.get(url, params={"columns": "ID,URI,label,xsiType", "format": "json"}, timeout=10))
    assert all(list(r) == ["ID", "label", "xsiType", "URI"] for r in xnatpy_columns)
    unknown = http.get(f"{emulator.url}/data/projects/DEMO/subjects/NOBODY/experiments?format=json", timeout=10)
    assert unknown.status_code == 404


def test_site_experiment_listing(emulator: EmulatorServer, http: requests.Session) -> None:
    body = http.get(f"{emulator.url}/data/experiments?format=json", timeout=10).json()["ResultSet"]
    assert body["title"] == "Matching experiments"
    labels = {r["label"] for r in body["Result"]}
    assert {"DEMO_001_MR_1", "S2_002_PET_1", "DEMO_001_MR_1_QC"} <= labels  # image assessors are experiments
    assert list(body["Result"][0]) == ["ID", "project", "date", "xsiType", "label", "insert_date", "URI"]
    mr = rows(http.get(f"{emulator.url}/data/experiments", params={"xsiType": "xnat:mrSessionData",
                                                                   "format": "json"}, timeout=10))
    assert {r["xsiType"] for r in mr} == {"xnat:mrSessionData"}
    assert next(r for r in mr if r["label"] == "DEMO_002_MR_1")["subject_label"] == "DEMO_002"
    images = rows(http.get(f"{emulator.url}/data/experiments", params={"xsiType": "xnat:imageSessionData",
                                                                       "format": "json"}, timeout=10))
    assert {r["xsiType"] for r in images} == {"xnat:mrSessionData", "xnat:ctSessionData", "xnat:petSessionData"}


def test_experiment_filters_dates_wildcards_and_csv(emulator: EmulatorServer, http: requests.Session) -> None:
    url = f"{emulator.url}/data/experiments"
    one_day = rows(http.get(url, params={"date": "01/15/2024", "format": "json"}, timeout=10))
    assert {r["label"] for r in one_day} >= {"DEMO_001_MR_1"}
    assert all(r["date"] == "2024-01-15" for r in one_day)
    january = rows(http.get(url, params={"date": "01/01/2024-01/31/2024", "xsiType": "xnat:imageSessionData",
                                         "format": "json"}, timeout=10))
    assert sorted(r["label"] for r in january) == ["DEMO_001_CT_1", "DEMO_001_MR_1"]
    wildcard = rows(http.get(url, params={"label": "S2_*", "modality": "PT", "format": "json"}, timeout=10))
    assert [r["label"] for r in wildcard] == ["S2_002_PET_1"]
    as_csv = http.get(url, params={"project": "STUDY2", "columns": "ID,label", "format": "csv"}, timeout=10)
    lines = as_csv.text.strip().split("\n")
    assert lines[0] == "ID,label,URI" and len(lines) == 3


def test_experiment_paging(emulator: EmulatorServer, http: requests.Session) -> None:
    url = f"{emulator.url}/data/projects/DEMO/experiments"
    everything = rows(http.get(url, params={"format": "json"}, timeout=10))
    page = http.get(url, params={"limit": 2, "offset": 2, "format": "json"}, timeout=10).json()["ResultSet"]
    assert page["Result"] == everything[2:4] and "totalRecords" not in page


def test_session_items_json_nests_scans_resources_assessors(emulator: EmulatorServer,
                                                            http: requests.Session) -> None:
    store = emulator.store
    session = store.find_experiment("DEMO", "DEMO_001_MR_1")
    item = http.get(f"{emulator.url}/data/projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1?format=json",
                    timeout=10).json()["items"][0]
    assert item["meta"]["xsi:type"] == "xnat:mrSessionData" and item["meta"]["isHistory"] is False
    fields = item["data_fields"]
    assert (fields["ID"], fields["id"], fields["label"], fields["project"]) == (
        session.id, session.id, "DEMO_001_MR_1", "DEMO")
    assert fields["subject_ID"] == session.subject_id and fields["date"] == "2024-01-15"
    assert fields["scanner/manufacturer"] == "GE MEDICAL SYSTEMS"
    nested = children(item)
    scans = nested["scans/scan"]
    assert [s["data_fields"]["ID"] for s in scans] == ["1", "2", "3"]
    scan = scans[1]
    assert scan["meta"]["xsi:type"] == "xnat:mrScanData"
    assert scan["data_fields"]["type"] == "T1w MPRAGE" and scan["data_fields"]["frames"] == 16
    (dicom,) = children(scan)["file"]
    resource = store.find_resource(store.get_scan(session.id, "2"), "DICOM")
    assert dicom["meta"]["xsi:type"] == "xnat:resourceCatalog"
    assert {k: dicom["data_fields"][k] for k in ("xnat_abstractresource_id", "label", "file_count", "file_size",
                                                  "format", "content")} == {
        "xnat_abstractresource_id": resource.id, "label": "DICOM", "file_count": store.file_stats(resource.id)[0],
        "file_size": store.file_stats(resource.id)[1], "format": "DICOM", "content": "RAW"}
    assert [r["data_fields"]["label"] for r in nested["resources/resource"]] == ["notes"]
    (assessor,) = nested["assessors/assessor"]
    assert assessor["meta"]["xsi:type"] == "xnat:qcAssessmentData"
    assert assessor["data_fields"]["imageSession_ID"] == session.id
    assert children(assessor)["out/file"][0]["data_fields"]["label"] == "QC"
    (recon,) = nested["reconstructions/reconstructedImage"]
    assert recon["data_fields"]["ID"] == "DEMO_001_MR_1_T1_bc"


def test_experiment_lookup_paths(emulator: EmulatorServer, http: requests.Session) -> None:
    session = emulator.store.find_experiment("DEMO", "DEMO_002_MR_1")
    for path in (f"/data/experiments/{session.id}", f"/data/archive/experiments/{session.id}",
                 "/data/projects/DEMO/experiments/DEMO_002_MR_1", f"/data/projects/DEMO/experiments/{session.id}",
                 "/REST/projects/DEMO/subjects/DEMO_002/experiments/DEMO_002_MR_1"):
        item = http.get(f"{emulator.url}{path}?format=json", timeout=10).json()["items"][0]
        assert item["data_fields"]["ID"] == session.id, path
    for path in ("/data/experiments/DEMO_002_MR_1", "/data/projects/DEMO/experiments/NOPE",
                 "/data/projects/DEMO/subjects/DEMO_001/experiments/DEMO_002_MR_1"):
        missing = http.get(f"{emulator.url}{path}?format=json", timeout=10)
        assert missing.status_code == 404, path
        assert "<h3>Unable to find the specified experiment.</h3>" in missing.text


@pytest.mark.parametrize(("label", "tag"), [("DEMO_001_MR_1", "MRSession"), ("DEMO_001_CT_1", "CTSession"),
                                            ("S2_002_PET_1", "PETSession")])
def test_session_xml_documents(emulator: EmulatorServer, http: requests.Session, label: str, tag: str) -> None:
    session = next(e for e in emulator.store.list_experiments() if e.label == label)
    response = http.get(f"{emulator.url}/data/experiments/{session.id}?format=xml", timeout=10)
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{XNAT}}}{tag}"
    assert (root.get("ID"), root.get("label"), root.get("project")) == (session.id, label, session.project)
    assert root.findtext(f"{{{XNAT}}}subject_ID") == session.subject_id
    scans = root.findall(f"{{{XNAT}}}scans/{{{XNAT}}}scan")
    assert [s.get("ID") for s in scans] == [s.id for s in emulator.store.list_scans(session.id)]
    assert all(s.get(f"{{{XSI}}}type").endswith("ScanData") for s in scans)
    assert scans[0].find(f"{{{XNAT}}}file").get("label") == "DICOM"


def test_experiment_create_update_rename_delete(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    url = fresh_emulator.url
    store = fresh_emulator.store
    assert fresh_http.put(f"{url}/data/projects/P1", timeout=10).status_code == 200
    need = fresh_http.put(f"{url}/data/projects/P1/subjects/NEWSUBJ/experiments/E1", timeout=10)
    assert need.status_code == 417 and "Need PUT Contents" in need.text
    assert store.find_subject("P1", "NEWSUBJ") is None
    created = fresh_http.put(f"{url}/data/projects/P1/subjects/NEWSUBJ/experiments/E1",
                             params={"xsiType": "xnat:mrSessionData", "date": "03/04/2021",
                                     "xnat:mrSessionData/time": "10:11:12",
                                     "xnat:imageSessionData/scanner/manufacturer": "ACME", "scanner/model": "ignored"},
                             timeout=10)
    assert created.status_code == 201 and re.fullmatch(r"XNAT_E\d{5}", created.text)
    experiment = store.get_experiment(created.text)
    subject = store.find_subject("P1", "NEWSUBJ")  # the missing subject was created with that label
    assert experiment.subject_id == subject.id and experiment.label == "E1"
    assert experiment.fields == {"date": "2021-03-04", "time": "10:11:12", "scanner/manufacturer": "ACME"}

    updated = fresh_http.put(f"{url}/data/experiments/{experiment.id}",
                             params={"xsiType": "xnat:mrSessionData", "xnat:experimentData/note": "hello",
                                     "xnat:mrSessionData/fields/field[name=visit]/field": "v1"}, timeout=10)
    assert (updated.status_code, updated.text) == (200, experiment.id)
    listed = rows(fresh_http.get(f"{url}/data/projects/P1/experiments",
                                 params={"columns": "ID,label,note,date,subject_label", "format": "json"}, timeout=10))
    assert listed == [{"ID": experiment.id, "label": "E1", "note": "hello", "date": "2021-03-04",
                       "subject_label": "NEWSUBJ", "URI": f"/data/experiments/{experiment.id}"}]

    renamed = fresh_http.put(f"{url}/data/projects/P1/experiments/E1", params={"label": "E1B"}, timeout=10)
    assert (renamed.status_code, renamed.text) == (200, "")
    assert store.get_experiment(experiment.id).label == "E1B"
    other = fresh_http.put(f"{url}/data/projects/P1/subjects/NEWSUBJ/experiments/E2",
                           params={"xsiType": "xnat:ctSessionData"}, timeout=10)
    assert other.status_code == 201
    in_use = fresh_http.put(f"{url}/data/projects/P1/experiments/E2", params={"label": "E1B"}, timeout=10)
    assert in_use.status_code == 409 and "Specified label is already in use." in in_use.text
    bad_label = fresh_http.put(f"{url}/data/projects/P1/subjects/NEWSUBJ/experiments/bad%20label",
                               params={"xsiType": "xnat:mrSessionData"}, timeout=10)
    assert bad_label.status_code == 417 and "Invalid character in experiment label." in bad_label.text
    bad_date = fresh_http.put(f"{url}/data/experiments/{experiment.id}", params={"date": "yesterday"}, timeout=10)
    assert bad_date.status_code == 400

    deleted = fresh_http.delete(f"{url}/data/archive/projects/P1/subjects/NEWSUBJ/experiments/E1B",
                                params={"removeFiles": "true"}, timeout=10)
    assert (deleted.status_code, deleted.text) == (200, "")
    assert fresh_http.get(f"{url}/data/experiments/{experiment.id}?format=json", timeout=10).status_code == 404
    assert [r["label"] for r in rows(fresh_http.get(f"{url}/data/experiments?format=json", timeout=10))] == ["E2"]


def test_experiment_put_needs_project_and_subject(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    url = fresh_emulator.url
    assert fresh_http.put(f"{url}/data/projects/P1", timeout=10).status_code == 200
    subject_id = fresh_http.put(f"{url}/data/projects/P1/subjects/S1", timeout=10).text
    no_subject = fresh_http.put(f"{url}/data/projects/P1/experiments/E1", params={"xsiType": "xnat:mrSessionData"},
                                timeout=10)
    assert no_subject.status_code == 422 and "must include the subject" in no_subject.text
    no_project = fresh_http.put(f"{url}/data/experiments/E1", params={"xsiType": "xnat:mrSessionData"}, timeout=10)
    assert no_project.status_code == 422 and "must include the project attribute" in no_project.text
    unknown_project = fresh_http.put(f"{url}/data/projects/NOPE/subjects/S1/experiments/E1",
                                     params={"xsiType": "xnat:mrSessionData"}, timeout=10)
    assert unknown_project.status_code == 404
    created = fresh_http.put(f"{url}/data/projects/P1/experiments/E1",
                             params={"xsiType": "xnat:petSessionData", "subject_ID": subject_id}, timeout=10)
    assert created.status_code == 201
    assert fresh_emulator.store.get_experiment(created.text).subject_id == subject_id


def test_session_xml_body_with_scans_by_put_and_post(fresh_emulator: EmulatorServer,
                                                     fresh_http: requests.Session) -> None:
    url = fresh_emulator.url
    document = (b'<xnat:MRSession xmlns:xnat="http://nrg.wustl.edu/xnat" '
                b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" label="XE1" modality="MR">'
                b'<xnat:date>2020-02-03</xnat:date><xnat:scanner manufacturer="GE">MR1</xnat:scanner>'
                b'<xnat:scans><xnat:scan ID="5" type="T1" xsi:type="xnat:mrScanData">'
                b'<xnat:quality>usable</xnat:quality><xnat:parameters><xnat:tr>2.5</xnat:tr></xnat:parameters>'
                b'</xnat:scan></xnat:scans></xnat:MRSession>')
    assert fresh_http.put(f"{url}/data/projects/P1", timeout=10).status_code == 200
    created = fresh_http.put(f"{url}/data/projects/P1/subjects/S1/experiments/XE1", data=document,
                             headers={"Content-Type": "text/xml"}, timeout=10)
    assert created.status_code == 201
    session = fresh_emulator.store.get_experiment(created.text)
    assert session.xsi_type == "xnat:mrSessionData"
    assert session.fields == {"modality": "MR", "date": "2020-02-03", "scanner": "MR1",
                              "scanner/manufacturer": "GE"}
    (scan,) = fresh_emulator.store.list_scans(session.id)
    assert (scan.id, scan.xsi_type, scan.fields) == ("5", "xnat:mrScanData",
                                                     {"type": "T1", "quality": "usable", "parameters/tr": "2.5"})
    posted = fresh_http.post(f"{url}/data/projects/P1/subjects/S1/experiments",
                             data=document.replace(b'label="XE1"', b'label="XE2"'),
                             headers={"Content-Type": "text/xml"}, timeout=10)
    assert posted.status_code == 200
    new_id = posted.headers["Location"].rsplit("/", 1)[-1]
    assert fresh_emulator.store.get_experiment(new_id).label == "XE2"
    again = fresh_http.post(f"{url}/data/projects/P1/experiments", data=document, headers={"Content-Type": "text/xml"},
                            timeout=10)
    assert again.status_code == 409 and "Specified experiment already exists." in again.text
