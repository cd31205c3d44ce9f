"""Single-object documents: the XML the emulator serves validates against XNAT's own ``xnat.xsd``, and
the items JSON keeps schema types and XFT's item boundaries."""

from __future__ import annotations

from importlib import resources

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def xnat_schema() -> etree.XMLSchema:
    path = resources.files("xnatfs.emulator") / "schemas" / "xnat" / "xnat.xsd"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(path), parser))


def _paths(emulator: EmulatorServer) -> list[str]:
    store = emulator.store
    ct = store.find_experiment("DEMO", "DEMO_001_CT_1")
    pet = store.find_experiment("STUDY2", "S2_002_PET_1")
    mr = store.find_experiment("DEMO", "DEMO_001_MR_1")
    return ["/data/projects/DEMO", "/data/projects/STUDY2/subjects/S2_002", f"/data/experiments/{ct.id}",
            f"/data/experiments/{pet.id}", f"/data/experiments/{pet.id}/scans/2", f"/data/experiments/{mr.id}/scans/1",
            f"/data/experiments/{mr.id}/reconstructions/DEMO_001_MR_1_T1_bc"]


def test_xml_documents_validate_against_xnat_xsd(emulator: EmulatorServer, http: requests.Session,
                                                 xnat_schema: etree.XMLSchema) -> None:
    for path in _paths(emulator):
        response = http.get(f"{emulator.url}{path}", params={"format": "xml"}, timeout=10)
        assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<xnat:')
        document = etree.fromstring(response.content)
        assert xnat_schema.validate(document), (path, [str(e) for e in xnat_schema.error_log])


def test_created_session_with_everything_validates(fresh_emulator: EmulatorServer,
                                                   xnat_schema: etree.XMLSchema) -> None:
    url = fresh_emulator.url
    with requests.Session() as s:
        s.auth = ("admin", "admin")
        assert s.put(f"{url}/data/projects/P1", params={"pi_firstname": "Ada", "pi_lastname": "L"},
                     timeout=10).status_code == 200
        session_id = s.put(f"{url}/data/projects/P1/subjects/S1/experiments/E1", params={
            "xsiType": "xnat:mrSessionData", "date": "2020-01-02", "xnat:mrSessionData/fieldStrength": "3.0",
            "xnat:mrSessionData/fields/field[name=visit]/field": "v1", "validation_method": "manual"},
            timeout=10).text
        assert s.put(f"{url}/data/experiments/{session_id}/scans/1", params={
            "xsiType": "xnat:mrScanData", "type": "T1", "xnat:mrScanData/parameters/voxelRes/x": "1.0"},
            timeout=10).status_code == 200
        assert s.put(f"{url}/data/experiments/{session_id}/scans/1/resources/DICOM", params={"format": "DICOM"},
                     timeout=10).status_code == 200
        for path in ("/data/projects/P1", "/data/projects/P1/subjects/S1", f"/data/experiments/{session_id}"):
            document = etree.fromstring(s.get(f"{url}{path}?format=xml", timeout=10).content)
            assert xnat_schema.validate(document), (path, [str(e) for e in xnat_schema.error_log])
        item = s.get(f"{url}/data/experiments/{session_id}?format=json", timeout=10).json()["items"][0]
        fields = {c["field"]: c["items"] for c in item["children"]}
        assert fields["validation"][0]["meta"]["xsi:type"] == "xnat:validationData"
        assert fields["validation"][0]["data_fields"] == {"method": "manual"}
        scan = fields["scans/scan"][0]
        assert scan["data_fields"]["parameters/voxelRes/x"] == 1.0  # xs:float in the schema
        (resource,) = next(c for c in scan["children"] if c["field"] == "file")["items"]
        assert (resource["data_fields"]["file_count"], resource["data_fields"]["file_size"]) == (0, 0)
        project = s.get(f"{url}/data/projects/P1?format=json", timeout=10).json()["items"][0]
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


def test_plugin_type_is_rendered_with_its_base_shape(fresh_emulator: EmulatorServer) -> None:
    url = fresh_emulator.url
    with requests.Session() as s:
        s.auth = ("admin", "admin")
        assert s.put(f"{url}/data/projects/P1", timeout=10).status_code == 200
        session_id = s.put(f"{url}/data/projects/P1/subjects/S1/experiments/E1",
                           params={"xsiType": "xnat:mrSessionData"}, timeout=10).text
        created = s.put(f"{url}/data/experiments/{session_id}/assessors/ROI1",
                        params={"xsiType": "icr:roiCollectionData", "xnat:imageAssessorData/date": "01/02/2020"},
                        timeout=10)
        assert created.status_code == 201
        item = s.get(f"{url}/data/experiments/{created.text}?format=json", timeout=10).json()["items"][0]
        assert item["meta"]["xsi:type"] == "icr:roiCollectionData"
        assert item["data_fields"]["date"] == "2020-01-02"
        assert item["data_fields"]["imageSession_ID"] == session_id and "subject_ID" not in item["data_fields"]
        session = etree.fromstring(s.get(f"{url}/data/experiments/{session_id}?format=xml", timeout=10).content)
        xnat = "http://nrg.wustl.edu/xnat"
        assessor = session.find(f"{{{xnat}}}assessors/{{{xnat}}}assessor")
        assert assessor.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "icr:roiCollectionData"
        assert assessor.findtext(f"{{{xnat}}}date") == "2020-01-02"
