"""Single-object documents: the XML the emulator serves validates against XNAT's own ``xnat.xsd``, and
the items JSON keeps schema types and XFT's item boundaries."""

from __future__ import annotations

from importlib import resources

import pytest
import requests
from lxml import etree

from xnatfs.emulator.sample import summarize
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def xnat_schema() -> etree.XMLSchema:
    path = resources.files("xnatfs.emulator") / "schemas" / "xnat" / "xnat.xsd"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(path), parser))


def _paths(emulator: EmulatorServer) -> list[str]:
    """Every object of the sample archive: projects, subjects, sessions, assessors, scans, reconstructions."""
    store = emulator.store
    paths = [f"/data/projects/{p.id}" for p in store.list_projects()]
    paths += [f"/data/projects/{s.project}/subjects/{s.label}" for s in store.list_subjects()]
    for experiment in store.list_experiments(assessors=True):
        paths.append(f"/data/experiments/{experiment.id}")
        paths += [f"/data/experiments/{experiment.id}/scans/{s.id}" for s in store.list_scans(experiment.id)]
        paths += [f"/data/experiments/{experiment.id}/reconstructions/{r.id}"
                  for r in store.list_reconstructions(experiment.id)]
    return paths


def test_xml_documents_validate_against_xnat_xsd(emulator: EmulatorServer, http: requests.Session,
                                                 xnat_schema: etree.XMLSchema) -> None:
    paths = _paths(emulator)
    counts = summarize(emulator.store)
    assert len(paths) == len(counts["projects"]) + sum(counts[k] for k in (
        "subjects", "sessions", "assessors", "scans", "reconstructions"))
    for path in paths:
        response = http.get(f"{emulator.url}{path}", params={"format": "xml"}, timeout=10)
        assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<xnat:')
        document = etree.fromstring(response.content)
        assert xnat_schema.validate(document), (path, [str(e) for e in xnat_schema.error_log])


def test_qc_assessor_scans_are_child_items(emulator: EmulatorServer, http: requests.Session,
                                          fresh_emulator: EmulatorServer, fresh_http: requests.Session,
                                          mr_session_id: str, xnat_schema: etree.XMLSchema) -> None:
    """xnat:qcAssessmentData requires scans/scan: JSON children ``xnat:qcAssessmentData_scan``, no
    listing column, and an XML document PUT back keeps them."""
    store = emulator.store
    session = store.find_experiment("DEMO", "DEMO_001_MR_1")
    (qc,) = store.list_experiments(session_id=session.id)
    item = http.get(f"{emulator.url}/data/experiments/{qc.id}?format=json", timeout=10).json()["items"][0]
    (scans,) = [c["items"] for c in item["children"] if c["field"] == "scans/scan"]
    assert [s["data_fields"] for s in scans] == [{"id": s.id} for s in store.list_scans(session.id)]
    assert {s["meta"]["xsi:type"] for s in scans} == {"xnat:qcAssessmentData_scan"}
    assert "scans/scan" not in item["data_fields"]
    row = http.get(f"{emulator.url}/data/experiments/{session.id}/assessors?format=json",
                   timeout=10).json()["ResultSet"]["Result"][0]
    assert "[" not in "".join(row.values())

    document = etree.fromstring(http.get(f"{emulator.url}/data/experiments/{qc.id}?format=xml", timeout=10).content)
    url = fresh_emulator.url
    for attribute in ("ID", "project"):
        document.attrib.pop(attribute)
    document.find("{http://nrg.wustl.edu/xnat}imageSession_ID").text = mr_session_id
    answer = fresh_http.put(f"{url}/data/experiments/{mr_session_id}/assessors/QC1", data=etree.tostring(document),
                            headers={"Content-Type": "text/xml"}, timeout=10)
    assert answer.status_code == 201, answer.text
    stored = fresh_emulator.store.get_experiment(answer.text)
    assert stored.fields["scans/scan"] == [{"id": s.id} for s in store.list_scans(session.id)]
    again = etree.fromstring(fresh_http.get(f"{url}/data/experiments/{answer.text}?format=xml", timeout=10).content)
    assert xnat_schema.validate(again), [str(e) for e in xnat_schema.error_log]


def test_created_session_with_everything_validates(fresh_emulator: EmulatorServer, fresh_http: requests.Session,
                                                   xnat_schema: etree.XMLSchema) -> None:
    url = fresh_emulator.url
    assert fresh_http.put(f"{url}/data/projects/P1", params={"pi_firstname": "Ada", "pi_lastname": "L"},
                          timeout=10).status_code == 200
    session_id = fresh_http.put(f"{url}/data/projects/P1/subjects/S1/experiments/E1", params={
        "xsiType": "xnat:mrSessionData", "date": "2020-01-02", "xnat:mrSessionData/fieldStrength": "3.0",
        "xnat:mrSessionData/fields/field[name=visit]/field": "v1", "validation_method": "manual"},
        timeout=10).text
    assert fresh_http.put(f"{url}/data/experiments/{session_id}/scans/1", params={
        "xsiType": "xnat:mrScanData", "type": "T1", "xnat:mrScanData/parameters/voxelRes/x": "1.0"},
        timeout=10).status_code == 200
    assert fresh_http.put(f"{url}/data/experiments/{session_id}/scans/1/resources/DICOM", params={"format": "DICOM"},
                          timeout=10).status_code == 200
    for path in ("/data/projects/P1", "/data/projects/P1/subjects/S1", f"/data/experiments/{session_id}"):
        document = etree.fromstring(fresh_http.get(f"{url}{path}?format=xml", timeout=10).content)
        assert xnat_schema.validate(document), (path, [str(e) for e in xnat_schema.error_log])
    item = fresh_http.get(f"{url}/data/experiments/{session_id}?format=json", timeout=10).json()["items"][0]
    fields = {c["field"]: c["items"] for c in item["children"]}
    assert fields["validation"][0]["meta"]["xsi:type"] == "xnat:validationData"
    assert fields["validation"][0]["data_fields"] == {"method": "manual"}
    scan = fields["scans/scan"][0]
    assert scan["data_fields"]["parameters/voxelRes/x"] == 1.0  # xs:float in the schema
    (resource,) = next(c for c in scan["children"] if c["field"] == "file")["items"]
    assert (resource["data_fields"]["file_count"], resource["data_fields"]["file_size"]) == (0, 0)
    project = fresh_http.get(f"{url}/data/projects/P1?format=json", timeout=10).json()["items"][0]
    (pi,) = next(c for c in project["children"] if c["field"] == "PI")["items"]
    assert pi["meta"]["xsi:type"] == "xnat:investigatorData"
    assert pi["data_fields"] == {"firstname": "Ada", "lastname": "L"}


def test_items_json_keeps_schema_types(emulator: EmulatorServer, http: requests.Session) -> None:
    session = emulator.store.find_experiment("DEMO", "DEMO_001_MR_1")
    scan = http.get(f"{emulator.url}/data/experiments/{session.id}/scans/2?format=json", timeout=10).json()
    fields = scan["items"][0]["data_fields"]
    assert fields["frames"] == 16 and isinstance(fields["parameters/tr"], float)  # xs:integer, xs:float
    assert fields["ID"] == "2" and fields["image_session_ID"] == session.id       # xs:string stays a string
    assert isinstance(fields["xnat_imagescandata_id"], int)


def test_plugin_type_is_rendered_with_its_base_shape(fresh_emulator: EmulatorServer, fresh_http: requests.Session,
                                                     mr_session_id: str) -> None:
    url = fresh_emulator.url
    created = fresh_http.put(f"{url}/data/experiments/{mr_session_id}/assessors/ROI1",
                             params={"xsiType": "icr:roiCollectionData", "xnat:imageAssessorData/date": "01/02/2020"},
                             timeout=10)
    assert created.status_code == 201
    item = fresh_http.get(f"{url}/data/experiments/{created.text}?format=json", timeout=10).json()["items"][0]
    assert item["meta"]["xsi:type"] == "icr:roiCollectionData"
    assert item["data_fields"]["date"] == "2020-01-02"
    assert item["data_fields"]["imageSession_ID"] == mr_session_id and "subject_ID" not in item["data_fields"]
    session = etree.fromstring(fresh_http.get(f"{url}/data/experiments/{mr_session_id}?format=xml", timeout=10).content)
    xnat = "http://nrg.wustl.edu/xnat"
    assessor = session.find(f"{{{xnat}}}assessors/{{{xnat}}}assessor")
    assert assessor.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "icr:roiCollectionData"
    assert assessor.findtext(f"{{{xnat}}}date") == "2020-01-02"
