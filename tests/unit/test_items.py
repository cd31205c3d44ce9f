"""Item documents (JSON and XML) and catalogs; XML entities are never expanded."""

from __future__ import annotations

import pytest

from xnatfs.errors import ServerError
from xnatfs.rest.items import current_item, field_text, is_catalog_xml, parse_catalog, parse_item_xml

pytestmark = pytest.mark.unit

DOC = {"items": [
    {"meta": {"isHistory": True, "xsi:type": "xnat:mrSessionData"}, "data_fields": {"label": "old"}},
    {"meta": {"isHistory": False, "xsi:type": "xnat:mrSessionData"},
     "data_fields": {"ID": "E1", "label": "exam", "fieldStrength": 3.0, "scanner/manufacturer": "GE", "valid": True},
     "children": [{"field": "scans/scan", "items": [
         {"meta": {"isHistory": False, "xsi:type": "xnat:mrScanData"}, "data_fields": {"ID": "1", "type": "T1"}}]}]},
]}


def test_current_item_skips_history_and_keeps_children() -> None:
    item = current_item(DOC)
    assert item.xsi_type == "xnat:mrSessionData"
    assert item.text("label") == "exam" and item.text("scanner/manufacturer") == "GE"
    assert item.text("fieldStrength") == "3.0" and item.text("valid") == "true"
    assert item.text("absent") is None
    assert item.children["scans/scan"][0].fields["type"] == "T1"


def test_field_text() -> None:
    assert field_text(None) is None and field_text(False) == "false" and field_text(12) == "12"


@pytest.mark.parametrize("body", [{}, {"items": "x"}, {"items": []}, None])
def test_malformed_item_documents_are_server_errors(body: object) -> None:
    with pytest.raises(ServerError):
        current_item(body)


def test_xxe_payload_is_not_expanded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    payload = (f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>'
               '<xnat:Subject xmlns:xnat="http://nrg.ornl.gov/xnat" ID="S1">&e;</xnat:Subject>')
    with pytest.raises(ServerError, match="DOCTYPE") as info:  # XNAT never sends a DOCTYPE: refused whole
        parse_item_xml(payload)
    assert "TOP-SECRET" not in str(info.value)


def test_catalog_detection_and_entries() -> None:
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<cat:Catalog xmlns:cat="http://nrg.wustl.edu/catalog" ID="R1">'
           b'<cat:entries><cat:entry URI="a/1.dcm" ID="1.dcm" name="1.dcm" digest="abc" size="12" format="DICOM"/>'
           b'</cat:entries></cat:Catalog>')
    assert is_catalog_xml(xml) and not is_catalog_xml(b'{"items": []}')
    (entry,) = parse_catalog(xml)
    assert (entry.uri, entry.digest, entry.size, entry.format) == ("a/1.dcm", "abc", 12, "DICOM")
