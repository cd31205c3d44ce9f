"""Scans, reconstructions and image assessors over real HTTP: listings, items, XML, PUT/DELETE and errors."""

from __future__ import annotations

import re

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

XNAT = "http://nrg.wustl.edu/xnat"
SCAN_COLUMNS = ["xnat_imagescandata_id", "ID", "type", "quality", "xsiType", "note", "series_description", "URI"]


def rows(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["ResultSet"]["Result"]


def session_paths(emulator: EmulatorServer, label: str) -> list[str]:
    session = emulator.store.find_experiment("DEMO", label)
    subject = emulator.store.get_subject(session.subject_id)
    return [f"/data/projects/DEMO/subjects/{subject.label}/experiments/{label}",
            f"/data/archive/projects/DEMO/experiments/{session.id}", f"/data/experiments/{session.id}"]


def test_scan_listing_rows(emulator: EmulatorServer, http: requests.Session) -> None:
    session = emulator.store.find_experiment("DEMO", "DEMO_001_MR_1")
    listings = [rows(http.get(f"{emulator.url}{p}/scans?format=json", timeout=10))
                for p in session_paths(emulator, "DEMO_001_MR_1")]
    assert listings[0] == listings[1] == listings[2]
    result = listings[0]
    assert [r["ID"] for r in result] == ["1", "2", "3"]
    scan = emulator.store.get_scan(session.id, "2")
    assert list(result[1]) == SCAN_COLUMNS
    assert result[1] == {"xnat_imagescandata_id": str(scan.pk), "ID": "2", "type": "T1w MPRAGE",
                         "quality": "usable", "xsiType": "xnat:mrScanData", "note": "",
                         "series_description": "T1w MPRAGE", "URI": f"/data/experiments/{session.id}/scans/2"}
    filtered = rows(http.get(f"{emulator.url}/data/experiments/{session.id}/scans",
                             params={"type": "T2*", "columns": "ID,type,frames", "format": "json"}, timeout=10))
    assert filtered == [{"ID": "3", "type": "T2w FLAIR", "frames": "16",
                         "URI": f"/data/experiments/{session.id}/scans/3"}]
    as_xml = etree.fromstring(http.get(f"{emulator.url}/data/experiments/{session.id}/scans?format=xml",
                                       timeout=10).content)
    assert as_xml.get("totalRecords") == "3"


def test_scan_item_json_and_xml(emulator: EmulatorServer, http: requests.Session) -> None:
    path = session_paths(emulator, "DEMO_001_CT_1")[0]
    item = http.get(f"{emulator.url}{path}/scans/2?format=json", timeout=10).json()["items"][0]
    assert item["meta"]["xsi:type"] == "xnat:ctScanData"
    assert item["data_fields"]["ID"] == "2" and item["data_fields"]["type"] == "Head 3mm"
    (resource,) = next(c for c in item["children"] if c["field"] == "file")["items"]
    assert resource["data_fields"]["label"] == "DICOM" and resource["data_fields"]["format"] == "DICOM"
    root = etree.fromstring(http.get(f"{emulator.url}{path}/scans/2?format=xml", timeout=10).content)
    assert root.tag == f"{{{XNAT}}}CTScan" and root.get("ID") == "2"
    assert root.find(f"{{{XNAT}}}file").get("label") == "DICOM"
    missing = http.get(f"{emulator.url}{path}/scans/99?format=json", timeout=10)
    assert missing.status_code == 404 and "Unable to find the specified scan." in missing.text


def test_reconstruction_listing_and_item(emulator: EmulatorServer, http: requests.Session) -> None:
    path = session_paths(emulator, "DEMO_001_MR_1")[2]
    (row,) = rows(http.get(f"{emulator.url}{path}/reconstructions?format=json", timeout=10))
    assert list(row) == ["xnat_reconstructedimagedata_id", "ID", "type", "baseScanType", "URI"]
    assert (row["ID"], row["type"], row["baseScanType"]) == ("DEMO_001_MR_1_T1_bc", "T1w_bias_corrected",
                                                             "T1w MPRAGE")
    assert row["URI"] == f"{path}/reconstructions/DEMO_001_MR_1_T1_bc"
    item = http.get(f"{emulator.url}{path}/reconstructions/DEMO_001_MR_1_T1_bc?format=json",
                    timeout=10).json()["items"][0]
    assert item["meta"]["xsi:type"] == "xnat:reconstructedImageData"
    out = next(c for c in item["children"] if c["field"] == "out/file")["items"]
    assert [r["data_fields"]["label"] for r in out] == ["RECON"]
    assert http.get(f"{emulator.url}{path}/reconstructions/NOPE?format=json", timeout=10).status_code == 404


def test_assessor_listing_and_item(emulator: EmulatorServer, http: requests.Session) -> None:
    session = emulator.store.find_experiment("DEMO", "DEMO_001_MR_1")
    assessor = emulator.store.find_experiment("DEMO", "DEMO_001_MR_1_QC")
    body = http.get(f"{emulator.url}{session_paths(emulator, 'DEMO_001_MR_1')[0]}/assessors?format=json",
                    timeout=10).json()["ResultSet"]
    assert body["title"] == "Project Subject Experiment Assessors" and body["totalRecords"] == "1"
    (row,) = body["Result"]
    assert row == {"ID": assessor.id, "project": "DEMO", "label": "DEMO_001_MR_1_QC", "date": "2024-01-15",
                   "xsiType": "xnat:qcAssessmentData", "insert_date": assessor.insert_date,
                   "session_ID": session.id, "session_label": "DEMO_001_MR_1",
                   "xnat:imageassessordata/id": assessor.id, "URI": f"/data/experiments/{assessor.id}"}
    for ref in ("DEMO_001_MR_1_QC", assessor.id):
        item = http.get(f"{emulator.url}/data/experiments/{session.id}/assessors/{ref}?format=json",
                        timeout=10).json()["items"][0]
        assert item["meta"]["xsi:type"] == "xnat:qcAssessmentData"
        assert item["data_fields"]["imageSession_ID"] == session.id
    root = etree.fromstring(http.get(f"{emulator.url}/data/experiments/{assessor.id}?format=xml",
                                     timeout=10).content)
    assert root.tag == f"{{{XNAT}}}QCAssessment"
    assert root.findtext(f"{{{XNAT}}}imageSession_ID") == session.id
    assert root.find(f"{{{XNAT}}}out/{{{XNAT}}}file").get("label") == "QC"


def test_scan_put_and_delete(fresh_emulator: EmulatorServer, fresh_http: requests.Session,
                             mr_session_id: str) -> None:
    url = fresh_emulator.url
    scan_url = f"{url}/data/projects/P1/subjects/S1/experiments/E1/scans/7"
    need = fresh_http.put(scan_url, timeout=10)
    assert need.status_code == 417 and "Need PUT Contents" in need.text
    generic = fresh_http.put(scan_url, params={"xsiType": "xnat:imageScanData"}, timeout=10)
    assert generic.status_code == 400 and "Multiple scan modalities" in generic.text
    created = fresh_http.put(scan_url, params={"xsiType": "xnat:mrScanData", "type": "T1", "quality": "usable",
                                               "xnat:mrScanData/parameters/tr": "2.3",
                                               "xnat:imageScanData/series_description": "T1 MPRAGE"}, timeout=10)
    assert (created.status_code, created.text) == (200, "")
    scan = fresh_emulator.store.get_scan(mr_session_id, "7")
    assert scan.fields == {"type": "T1", "quality": "usable", "parameters/tr": "2.3",
                           "series_description": "T1 MPRAGE"}
    updated = fresh_http.put(f"{url}/data/experiments/{mr_session_id}/scans/7",
                             params={"xsiType": "xnat:mrScanData", "xnat:mrScanData/quality": "questionable"},
                             timeout=10)
    assert (updated.status_code, updated.text) == (200, "")
    (row,) = rows(fresh_http.get(f"{url}/data/experiments/{mr_session_id}/scans?format=json", timeout=10))
    assert (row["ID"], row["quality"], row["series_description"]) == ("7", "questionable", "T1 MPRAGE")
    other_type = fresh_http.put(scan_url, params={"xsiType": "xnat:ctScanData"}, timeout=10)
    assert other_type.status_code == 409 and "Specified xsiType differs from existing xsiType" in other_type.text
    no_session = fresh_http.put(f"{url}/data/projects/P1/experiments/NOPE/scans/1",
                                params={"xsiType": "xnat:mrScanData"}, timeout=10)
    assert no_session.status_code == 404 and "Specified image session doesn't exist." in no_session.text
    deleted = fresh_http.delete(scan_url, params={"removeFiles": "true"}, timeout=10)
    assert (deleted.status_code, deleted.text) == (200, "")
    assert rows(fresh_http.get(f"{url}/data/experiments/{mr_session_id}/scans?format=json", timeout=10)) == []
    assert fresh_http.delete(scan_url, timeout=10).status_code == 404


def test_reconstruction_put_and_delete(fresh_emulator: EmulatorServer, fresh_http: requests.Session,
                                       mr_session_id: str) -> None:
    url = fresh_emulator.url
    recon_url = f"{url}/data/experiments/{mr_session_id}/reconstructions/R1"
    created = fresh_http.put(recon_url, params={"xsiType": "xnat:reconstructedImageData", "type": "bc",
                                                "xnat:reconstructedImageData/baseScanType": "T1"}, timeout=10)
    assert (created.status_code, created.text) == (200, "")
    assert fresh_http.put(recon_url, params={"type": "bc2"}, timeout=10).status_code == 200
    (row,) = rows(fresh_http.get(f"{url}/data/experiments/{mr_session_id}/reconstructions?format=json", timeout=10))
    assert (row["ID"], row["type"], row["baseScanType"]) == ("R1", "bc2", "T1")
    assert fresh_http.delete(recon_url, timeout=10).status_code == 200
    assert fresh_emulator.store.list_reconstructions(mr_session_id) == []


def test_assessor_put_and_delete(fresh_emulator: EmulatorServer, fresh_http: requests.Session,
                                 mr_session_id: str) -> None:
    url = fresh_emulator.url
    base = f"{url}/data/projects/P1/subjects/S1/experiments/E1/assessors"
    need = fresh_http.put(f"{base}/QC1", timeout=10)
    assert need.status_code == 417
    created = fresh_http.put(f"{base}/QC1", params={"xsiType": "xnat:qcAssessmentData", "label": "QC1",
                                                    "req_format": "qs", "xnat:qcAssessmentData/date": "12/31/2020"},
                             timeout=10)
    assert created.status_code == 201 and re.fullmatch(r"XNAT_E\d{5}", created.text)
    assessor = fresh_emulator.store.get_experiment(created.text)
    assert (assessor.session_id, assessor.label, assessor.fields) == (mr_session_id, "QC1", {"date": "2020-12-31"})
    updated = fresh_http.put(f"{base}/{assessor.id}", params={"xsiType": "xnat:qcAssessmentData", "note": "ok"},
                             timeout=10)
    assert (updated.status_code, updated.text) == (200, assessor.id)
    (row,) = rows(fresh_http.get(f"{base}?columns=ID,label,note&format=json", timeout=10))
    assert (row["label"], row["note"]) == ("QC1", "ok")
    # an assessor is not a subject assessor: it stays out of the project's experiment list
    assert [r["label"] for r in rows(fresh_http.get(f"{url}/data/projects/P1/experiments?format=json",
                                                    timeout=10))] == ["E1"]
    assert fresh_http.delete(f"{base}/QC1", timeout=10).status_code == 200
    assert fresh_http.get(f"{base}/QC1?format=json", timeout=10).status_code == 404
