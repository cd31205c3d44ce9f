"""The XSD parser and the schema loader, on the real XSD set shipped with the package and on small
hand-written schemas for the constructs the shipped set does not use."""

from __future__ import annotations

import json
import logging
import time
from importlib.resources import files

import pytest

from xnatfs.errors import NotFound, SchemaError
from xnatfs.schema.loader import DEFAULT_SCHEMA_NAMES, load_server_specs
from xnatfs.schema.specs import SchemaSpecs, python_attribute_name, python_class_name
from xnatfs.schema.xsd import parse_cache_info, parse_schemas

pytestmark = pytest.mark.unit


def shipped_documents() -> dict[str, bytes]:
    """The emulator's XSD files, read as data (no emulator code is imported), keyed like /xapi/schemas."""
    root = files("xnatfs") / "emulator" / "schemas"
    documents = {}
    for folder in sorted(root.iterdir(), key=lambda entry: entry.name):
        for xsd in sorted(folder.iterdir(), key=lambda entry: entry.name) if folder.is_dir() else ():
            if xsd.name.endswith(".xsd"):
                stem = xsd.name.removesuffix(".xsd")
                documents[folder.name if stem == folder.name else f"{folder.name}/{stem}"] = xsd.read_bytes()
    return documents


@pytest.fixture(scope="module")
def specs() -> SchemaSpecs:
    return parse_schemas(shipped_documents())


def schema(body: str, *, extra_ns: str = "") -> bytes:
    """A one-document schema in namespace ``http://example.org/t`` with prefix ``t``."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<xs:schema targetNamespace="http://example.org/t" '
            f'xmlns:t="http://example.org/t" xmlns:xs="http://www.w3.org/2001/XMLSchema" {extra_ns}>'
            f"{body}</xs:schema>").encode()


def fields_by_xpath(specs: SchemaSpecs, xsi_type: str) -> dict:
    return {field.xpath: field for field in specs.all_fields(xsi_type)}


# -- the shipped set ------------------------------------------------------------------------------
def test_shipped_set_parses_without_cache_and_reports_its_time() -> None:
    documents = shipped_documents()
    documents["xnat"] += f"<!-- {time.time_ns()} -->".encode()  # a new digest: a real, uncached parse
    misses_before = parse_cache_info().misses
    started = time.perf_counter()
    parsed = parse_schemas(documents)
    elapsed = time.perf_counter() - started
    print(f"\nparsed {len(documents)} XSD documents ({sum(map(len, documents.values()))} bytes) "
          f"into {len(parsed)} types in {elapsed * 1000:.1f} ms")
    assert parse_cache_info().misses == misses_before + 1
    assert parsed.skipped == ()
    assert len(parsed) > 150


def test_mr_session_derives_from_experiment_through_image_and_subject_assessor(specs: SchemaSpecs) -> None:
    mr = specs["xnat:mrSessionData"]
    assert mr.class_name == "MrSessionData"
    assert mr.element_name == "xnat:MRSession"
    assert mr.base_xsi_type == "xnat:imageSessionData"
    assert specs.ancestors("xnat:mrSessionData") == (
        "xnat:imageSessionData", "xnat:subjectAssessorData", "xnat:experimentData")
    assert specs.is_a("xnat:mrSessionData", "xnat:experimentData")
    assert not specs.is_a("xnat:experimentData", "xnat:mrSessionData")


def test_mr_session_has_its_own_and_inherited_fields_with_xnat_keys(specs: SchemaSpecs) -> None:
    fields = fields_by_xpath(specs, "xnat:mrSessionData")
    expected = {  # data_fields key → (python name, python type, declaring type)
        "date": ("date", "date", "xnat:experimentData"),
        "time": ("time", "time", "xnat:experimentData"),
        "label": ("label", "str", "xnat:experimentData"),
        "ID": ("id", "str", "xnat:experimentData"),
        "subject_ID": ("subject_id", "str", "xnat:subjectAssessorData"),
        "UID": ("uid", "str", "xnat:imageSessionData"),
        "scanner": ("scanner", "str", "xnat:imageSessionData"),
        "scanner/manufacturer": ("scanner_manufacturer", "str", "xnat:imageSessionData"),
        "scanner/model": ("scanner_model", "str", "xnat:imageSessionData"),
        "dcmPatientName": ("dcm_patient_name", "str", "xnat:imageSessionData"),
        "dcmPatientWeight": ("dcm_patient_weight", "float", "xnat:imageSessionData"),
        "fieldStrength": ("field_strength", "str", "xnat:mrSessionData"),
    }
    for key, (name, python_type, owner) in expected.items():
        field = fields[key]
        assert (field.name, field.python_type_name, field.owner) == (name, python_type, owner), key
    assert fields["ID"].required and fields["ID"].is_attribute
    assert fields["scanner/manufacturer"].put_xpath("xnat:mrSessionData") == "xnat:mrSessionData/scanner/manufacturer"
    own = {field.xpath for field in specs["xnat:mrSessionData"].fields}
    assert "fieldStrength" in own and "date" not in own


def test_mr_scan_fields_and_session_children(specs: SchemaSpecs) -> None:
    fields = fields_by_xpath(specs, "xnat:mrScanData")
    assert {"type", "series_description", "quality", "frames"} <= set(fields)
    assert fields["frames"].python_type_name == "int"
    assert fields["series_description"].name == "series_description"
    children = {child.name: child for child in specs.all_children("xnat:mrSessionData")}
    scans = children["scans"]
    assert (scans.xpath, scans.type_name, scans.multiple) == ("scans/scan", "xnat:imageScanData", True)
    assert children["resources"].type_name == "xnat:abstractResource"
    experiments = {child.name: child for child in specs.all_children("xnat:subjectData")}["experiments"]
    assert (experiments.xpath, experiments.type_name) == ("experiments/experiment", "xnat:subjectAssessorData")


def test_core_types_exist_with_their_families(specs: SchemaSpecs) -> None:
    for xsi_type in ("xnat:projectData", "xnat:subjectData", "xnat:resourceCatalog", "xnat:qcAssessmentData",
                     "xnat:ctSessionData", "xnat:petSessionData", "xnat:imageScanData"):
        assert xsi_type in specs
    assert specs.is_a("xnat:ctSessionData", "xnat:imageSessionData")
    assert specs.is_a("xnat:petSessionData", "xnat:imageSessionData")
    assert specs.is_a("xnat:resourceCatalog", "xnat:abstractResource")
    assert specs.is_a("xnat:qcAssessmentData", "xnat:experimentData")
    assert specs["xnat:projectData"].element_name == "xnat:Project"
    assert specs.elements["xnat:Subject"] == "xnat:subjectData"
    assert specs.by_class_name("ResourceCatalog") is specs["xnat:resourceCatalog"]


def test_repeated_anonymous_type_gets_xft_name_and_keeps_its_text_value(specs: SchemaSpecs) -> None:
    sharing = {child.name: child for child in specs["xnat:experimentData"].children}["sharing"]
    assert (sharing.xpath, sharing.type_name) == ("sharing/share", "xnat:experimentData_share")
    share = fields_by_xpath(specs, "xnat:experimentData_share")
    assert {"share", "label", "project"} <= set(share)
    assert specs["xnat:experimentData_share"].anonymous
    assert specs["xnat:experimentData_share"].display_identifier == "project"


def test_prefixes_come_from_each_documents_namespace_map(specs: SchemaSpecs) -> None:
    assert "xdat:user" in specs  # security.xsd binds "xdat" to its own namespace
    assert "cat:catalog" in specs and "prov:process" in specs
    assert specs["cat:catalog"].class_name == "CatCatalog"
    # xnat.xsd's custom_fields is xdat:jsonb, declared in xdat.xsd (a default namespace there)
    custom = fields_by_xpath(specs, "xnat:projectData")["custom_fields"]
    assert (custom.xsd_type, custom.python_type_name) == ("xs:string", "str")


def test_shipped_set_has_no_unknown_types(caplog: pytest.LogCaptureFixture) -> None:
    documents = shipped_documents()
    documents["catalog"] += f"<!-- {time.time_ns()} -->".encode()
    with caplog.at_level(logging.WARNING, logger="xnatfs.schema.xsd"):
        parse_schemas(documents)
    assert not [r for r in caplog.records if "Unknown XSD type" in r.getMessage()]


def test_second_parse_of_the_same_documents_is_a_cache_hit() -> None:
    documents = {"t": schema('<xs:complexType name="a"><xs:attribute name="b" type="xs:int"/></xs:complexType>'
                             f"<!-- {time.time_ns()} -->")}
    before = parse_cache_info()
    first = parse_schemas(documents)
    middle = parse_cache_info()
    second = parse_schemas(dict(documents))
    after = parse_cache_info()
    assert (middle.misses, middle.hits) == (before.misses + 1, before.hits)
    assert (after.misses, after.hits) == (middle.misses, middle.hits + 1)
    assert second is first


# -- constructs on small schemas ------------------------------------------------------------------
def test_unknown_type_is_a_string_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    body = ('<xs:complexType name="thing"><xs:sequence>'
            '<xs:element name="first" type="xdat:FOO"/><xs:element name="second" type="xdat:FOO"/>'
            '<xs:element name="third" type="xs:notAType"/></xs:sequence></xs:complexType>')
    documents = {"t": schema(body, extra_ns='xmlns:xdat="http://nrg.wustl.edu/xdat"')}
    with caplog.at_level(logging.WARNING, logger="xnatfs.schema.xsd"):
        parsed = parse_schemas(documents)
    fields = fields_by_xpath(parsed, "t:thing")
    assert [fields[name].python_type_name for name in ("first", "second", "third")] == ["str", "str", "str"]
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if "FOO" in m] == ["Unknown XSD type xdat:FOO: its fields are treated as strings"]
    assert len([m for m in messages if "xs:notAType" in m]) == 1


def test_external_entity_in_text_is_refused_not_expanded() -> None:
    xsd = ('<?xml version="1.0"?>\n<!DOCTYPE xs:schema [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
           '<xs:schema targetNamespace="http://example.org/t" xmlns:t="http://example.org/t" '
           'xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:complexType name="thing">'
           '<xs:annotation><xs:documentation>before &xxe; after</xs:documentation></xs:annotation>'
           '<xs:attribute name="a" type="xs:string"/></xs:complexType></xs:schema>').encode()
    with pytest.raises(SchemaError, match="evil"):  # a DOCTYPE refuses the whole document
        parse_schemas({"evil": xsd})
    parsed = parse_schemas({"evil": xsd}, lenient=True)
    assert parsed.skipped == ("evil",) and "t:thing" not in parsed


def test_external_entity_in_an_attribute_is_refused() -> None:
    xsd = ('<?xml version="1.0"?>\n<!DOCTYPE xs:schema [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
           '<xs:schema targetNamespace="http://example.org/t" xmlns:xs="http://www.w3.org/2001/XMLSchema">'
           '<xs:complexType name="thing"><xs:attribute name="&xxe;" type="xs:string"/></xs:complexType>'
           '</xs:schema>').encode()
    with pytest.raises(SchemaError, match="evil"):
        parse_schemas({"evil": xsd})
    assert parse_schemas({"evil": xsd}, lenient=True).skipped == ("evil",)


def test_nesting_inheritance_groups_and_restrictions() -> None:
    body = '''
      <xs:element name="Thing" type="t:thingData"/>
      <xs:element name="note" type="xs:string"/>
      <xs:simpleType name="grade"><xs:restriction base="t:level">
        <xs:enumeration value="1"/><xs:enumeration value="2"/></xs:restriction></xs:simpleType>
      <xs:simpleType name="level"><xs:restriction base="xs:int"/></xs:simpleType>
      <xs:group name="extras"><xs:sequence><xs:element name="extra" type="xs:boolean"/></xs:sequence></xs:group>
      <xs:attributeGroup name="stamps"><xs:attribute name="createdAt" type="xs:dateTime"/></xs:attributeGroup>
      <xs:complexType name="baseData">
        <xs:sequence><xs:element name="label"><xs:simpleType><xs:restriction base="xs:string">
          <xs:maxLength value="10"/></xs:restriction></xs:simpleType></xs:element></xs:sequence>
        <xs:attribute name="ID" type="xs:string" use="required"/>
      </xs:complexType>
      <xs:complexType name="thingData"><xs:complexContent><xs:extension base="t:baseData">
        <xs:sequence>
          <xs:choice><xs:element name="dob" type="xs:date"/><xs:element name="age" type="t:grade"/></xs:choice>
          <xs:group ref="t:extras"/>
          <xs:element ref="t:note"/>
          <xs:element name="class" type="xs:string"/>
          <xs:element name="outer" minOccurs="0"><xs:complexType><xs:all>
            <xs:element name="inner"><xs:complexType>
              <xs:sequence><xs:element name="deepValue" type="xs:float"/></xs:sequence>
              <xs:attribute name="unit" type="xs:string"/></xs:complexType></xs:element>
          </xs:all></xs:complexType></xs:element>
          <xs:element name="parts"><xs:complexType><xs:sequence>
            <xs:element name="part" type="t:baseData" maxOccurs="unbounded"/></xs:sequence></xs:complexType></xs:element>
          <xs:element name="tag" maxOccurs="unbounded"><xs:complexType><xs:simpleContent>
            <xs:extension base="xs:string"><xs:attribute name="scheme" type="xs:string"/></xs:extension>
          </xs:simpleContent></xs:complexType></xs:element>
          <xs:sequence maxOccurs="unbounded"><xs:element name="alias" type="xs:string"/></xs:sequence>
          <xs:element name="owner" type="t:baseData" minOccurs="0"/>
        </xs:sequence>
        <xs:attributeGroup ref="t:stamps"/>
      </xs:extension></xs:complexContent></xs:complexType>'''
    parsed = parse_schemas({"t": schema(body)})
    thing = parsed["t:thingData"]
    assert (thing.base_xsi_type, thing.element_name, thing.class_name) == ("t:baseData", "t:Thing", "TThingData")
    fields = fields_by_xpath(parsed, "t:thingData")
    summary = {key: (f.name, f.python_type_name, f.required) for key, f in fields.items()}
    assert summary == {
        "label": ("label", "str", True), "ID": ("id", "str", True),
        "dob": ("dob", "date", False), "age": ("age", "int", False),  # a choice: neither is required
        "extra": ("extra", "bool", True), "note": ("note", "str", True), "class": ("class_", "str", True),
        "outer/inner/deepValue": ("outer_inner_deep_value", "float", False),
        "outer/inner/unit": ("outer_inner_unit", "str", False), "createdAt": ("created_at", "datetime", False),
    }
    assert fields["age"].enumeration == ("1", "2") and fields["label"].max_length == 10
    children = {c.name: (c.xpath, c.type_name, c.multiple, c.simple) for c in thing.children}
    assert children == {
        "parts": ("parts/part", "t:baseData", True, False),  # the wrapper collapses
        "tag": ("tag", "t:thingData_tag", True, False),
        "alias": ("alias", "xs:string", True, True),  # repeated by its compositor
        "owner": ("owner", "t:baseData", False, False),
    }
    assert {f.xpath for f in parsed["t:thingData_tag"].fields} == {"tag", "scheme"}


def test_names_follow_xnatpy_rules() -> None:
    cases = {"UID": "uid", "ID": "id", "dcmPatientName": "dcm_patient_name", "series_description":
             "series_description", "subject_ID": "subject_id", "scanner/manufacturer": "scanner_manufacturer",
             "fieldStrength": "field_strength", "PI": "pi", "class": "class_", "type": "type", "3D": "f_3_d"}
    assert {xml: python_attribute_name(xml) for xml in cases} == cases
    assert python_class_name("xnat:mrSessionData") == "MrSessionData"
    assert python_class_name("xnat:experimentData_share") == "ExperimentDataShare"
    assert python_class_name("xdat:user") == "XdatUser"


# -- the loader -----------------------------------------------------------------------------------
class FakeServer:
    """A pure ``fetch(path)``: serves the shipped documents by name and records every path asked for."""

    def __init__(self, documents: dict[str, bytes], listing: object) -> None:
        self.documents = documents
        self.listing = listing
        self.paths: list[str] = []

    def fetch(self, path: str) -> bytes:
        self.paths.append(path)
        if path == "/xapi/schemas":
            if isinstance(self.listing, Exception):
                raise self.listing
            return json.dumps(self.listing).encode()
        name = path.removeprefix("/xapi/schemas/")
        if name not in self.documents:
            raise NotFound("Not found", status=404, url=path)
        return self.documents[name]


def test_loader_fetches_the_listed_schemas_and_skips_broken_plugins(caplog: pytest.LogCaptureFixture) -> None:
    documents = shipped_documents() | {"plugin/broken": b"<xs:schema><unclosed>"}
    server = FakeServer(documents, [*documents, "plugin/missing", "../../etc/passwd"])
    with caplog.at_level(logging.WARNING):
        loaded = load_server_specs(server.fetch, None)
    assert server.paths[0] == "/xapi/schemas"
    assert "/xapi/schemas/xnat" in server.paths and "/xapi/schemas/plugin/missing" in server.paths
    assert not any("passwd" in path for path in server.paths)
    assert "xnat:mrSessionData" in loaded and "cat:catalog" in loaded
    assert loaded.skipped == ("plugin/broken",)
    assert "plugin/missing" not in loaded.documents
    text = caplog.text
    assert "plugin/missing" in text and "plugin/broken" in text


def test_loader_uses_given_names_and_falls_back_to_core_names_when_listing_fails() -> None:
    server = FakeServer(shipped_documents(), ["xnat"])
    load_server_specs(server.fetch, ["catalog"])
    assert server.paths == ["/xapi/schemas/xnat", "/xapi/schemas/catalog"]
    failing = FakeServer(shipped_documents(), NotFound("Not found", status=404))
    load_server_specs(failing.fetch, None)
    assert failing.paths == ["/xapi/schemas", *(f"/xapi/schemas/{name}" for name in DEFAULT_SCHEMA_NAMES)]


def test_loader_requires_the_xnat_schema() -> None:
    without_xnat = {name: data for name, data in shipped_documents().items() if name != "xnat"}
    with pytest.raises(SchemaError, match="xnat"):
        load_server_specs(FakeServer(without_xnat, list(without_xnat)).fetch, None)
    broken_xnat = shipped_documents() | {"xnat": b"<xs:schema"}
    with pytest.raises(SchemaError, match="xnat"):
        load_server_specs(FakeServer(broken_xnat, list(broken_xnat)).fetch, None)
