"""Response formats as XNAT chooses them (spec §3.1, SRC SecureResource, Restlet 1.1 ``Resource``):
``format=`` wins; without it ``Accept`` is negotiated against the resource's variants (lists: JSON,
HTML, XML; single objects: HTML, XML); an ``Accept`` that admits none gets Restlet's bare 406; an
unknown ``format`` is the HTML table for a list and the XML document for an object; the import
service ignores ``Accept`` altogether."""

from __future__ import annotations

import io
import zipfile

import pytest
import requests
from lxml import etree

from xnatfs.emulator.dicomgen import make_series, make_uid
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


def _objects(emulator: EmulatorServer) -> list[str]:
    store = emulator.store
    session = store.find_experiment("DEMO", "DEMO_001_MR_1")
    (assessor,) = store.list_experiments(session_id=session.id)
    return ["/data/projects/DEMO", "/data/projects/DEMO/subjects/DEMO_001", f"/data/experiments/{session.id}",
            f"/data/experiments/{session.id}/scans/2", f"/data/experiments/{session.id}/assessors/{assessor.id}",
            f"/data/experiments/{session.id}/reconstructions/DEMO_001_MR_1_T1_bc"]


def test_single_objects_default_to_an_html_page(emulator: EmulatorServer, http: requests.Session) -> None:
    for path in _objects(emulator):
        label = etree.fromstring(http.get(f"{emulator.url}{path}?format=xml", timeout=10).content).get("label") \
            or path.rsplit("/", 1)[-1]
        for headers, params in (({}, {}), ({"Accept": "*/*"}, {}), ({}, {"format": "html"}),
                                ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, {}),
                                ({"Accept": "application/json"}, {"format": "HTML"})):
            response = http.get(f"{emulator.url}{path}", headers=headers, params=params, timeout=10)
            assert response.status_code == 200, (path, headers, params)
            assert response.headers["Content-Type"].startswith("text/html")
            assert response.text.startswith("<!DOCTYPE html>") and label in response.text


def test_single_objects_negotiate_xml_and_take_format(emulator: EmulatorServer, http: requests.Session) -> None:
    path = _objects(emulator)[2]
    document = http.get(f"{emulator.url}{path}?format=xml", timeout=10)
    for headers, params in (({"Accept": "text/xml"}, {}), ({"Accept": "text/xml, text/html;q=0.5"}, {}),
                            ({}, {"format": "XML"}), ({}, {"format": "bogus"}), ({}, {"format": "csv"})):
        response = http.get(f"{emulator.url}{path}", headers=headers, params=params, timeout=10)
        assert response.status_code == 200 and response.content == document.content, (headers, params)
        assert response.headers["Content-Type"].startswith("text/xml")
    as_json = http.get(f"{emulator.url}{path}", params={"format": "json"}, headers={"Accept": "text/xml"},
                       timeout=10)
    assert as_json.json()["items"][0]["meta"]["xsi:type"] == "xnat:mrSessionData"


@pytest.mark.parametrize("accept", ["application/json", "image/png", "garbage", "*/*;q=0", "application/xml"])
def test_single_object_with_no_acceptable_variant_is_a_bare_406(emulator: EmulatorServer, http: requests.Session,
                                                                accept: str) -> None:
    response = http.get(f"{emulator.url}/data/projects/DEMO", headers={"Accept": accept}, timeout=10)
    assert response.status_code == 406 and response.content == b""
    assert http.get(f"{emulator.url}/data/projects/DEMO", headers={"Accept": accept},
                    params={"format": "json"}, timeout=10).status_code == 200  # format= overrides Accept


@pytest.mark.parametrize("path", ["/data/projects", "/data/projects/DEMO/subjects", "/data/experiments",
                                  "/data/prearchive", "/data/projects/DEMO/resources"])
def test_lists_negotiate_json_html_xml(emulator: EmulatorServer, http: requests.Session, path: str) -> None:
    url = f"{emulator.url}{path}"
    for accept in ("*/*", "", "application/json", "application/json;q=abc", "text/*;q=0.1, application/*"):
        response = http.get(url, headers={"Accept": accept}, timeout=10)
        assert response.status_code == 200, accept
        assert "Result" in response.json()["ResultSet"]
    xml = http.get(url, headers={"Accept": "text/xml"}, timeout=10)
    assert xml.headers["Content-Type"].startswith("text/xml") and etree.fromstring(xml.content).tag == "ResultSet"
    page = http.get(url, headers={"Accept": "text/html"}, timeout=10)
    assert page.headers["Content-Type"].startswith("text/html") and "<table>" in page.text
    for accept in ("image/png", "garbage", "text/csv"):  # csv only by format=
        refused = http.get(url, headers={"Accept": accept}, timeout=10)
        assert refused.status_code == 406 and refused.content == b"", accept
    assert http.get(url, headers={"Accept": "image/png"}, params={"format": "csv"}, timeout=10).status_code == 200


def test_unknown_format_on_a_list_is_the_html_table(emulator: EmulatorServer, http: requests.Session) -> None:
    """SecureResource.representTable: any media type it does not know renders the HTML table."""
    for fmt in ("bogus", "%ZZ", "tar.gz", "xList"):
        response = http.get(f"{emulator.url}/data/projects", params={"format": fmt}, timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html"), fmt
        assert "<td>DEMO</td>" in response.text


def test_import_answer_ignores_accept(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    """Importer answers through returnDefaultRepresentation: only format= changes the body."""
    study = make_uid("formats", "study")
    slices = make_series(study_uid=study, series_uid=make_uid(study, "1"), frame_of_reference_uid=make_uid(study, "f"),
                         patient_name="S1", patient_id="E1", modality="MR", series_number=1,
                         series_description="T1", study_date="20240101", study_time="120000", slices=2, seed=1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, data in enumerate(slices):
            archive.writestr(f"{index}.dcm", data)
    url = fresh_emulator.url
    assert fresh_http.put(f"{url}/data/projects/P1", timeout=10).status_code == 200
    for accept, fmt, mimetype in (("text/plain", None, "text/uri-list"), ("garbage;q=x", None, "text/uri-list"),
                                  ("application/json", "txt", "text/plain"), ("*/*", "html", "text/html")):
        params = {"dest": "/prearchive/projects/P1", "overwrite": "append"}
        if fmt:
            params["format"] = fmt
        response = fresh_http.post(f"{url}/data/services/import", params=params, data=buffer.getvalue(),
                                   headers={"Content-Type": "application/zip", "Accept": accept}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith(mimetype), (accept, fmt)
        assert "/data/prearchive/projects/P1/" in response.text
        if mimetype == "text/uri-list":
            assert response.text.endswith("\r\n")
        if mimetype == "text/plain":
            assert not response.text.endswith("\n")
