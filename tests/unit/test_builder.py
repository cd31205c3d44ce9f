"""Classes built from the shipped XSD set: inheritance mirrors the XSD, family bases add behaviour,
descriptors convert both ways, every registry is independent, unknown types never crash."""

from __future__ import annotations

import ast
import inspect
import logging
from datetime import date
from importlib.resources import files
from typing import Any

import pytest

from xnatfs.model import builder
from xnatfs.model.builder import ClassRegistry, GeneratedObject, build_registry, describe
from xnatfs.model.fields import FieldDescriptor
from xnatfs.schema.specs import SchemaSpecs
from xnatfs.schema.xsd import parse_schemas

pytestmark = pytest.mark.unit


def shipped_documents() -> dict[str, bytes]:
    """The emulator's XSD files read as data (no emulator code is imported)."""
    root = files("xnatfs") / "emulator" / "schemas"
    return {f"{folder.name}/{xsd.name}": xsd.read_bytes() for folder in root.iterdir() if folder.is_dir()
            for xsd in folder.iterdir() if xsd.name.endswith(".xsd")}


@pytest.fixture(scope="module")
def specs() -> SchemaSpecs:
    return parse_schemas(shipped_documents())


class DataHost:
    """A family base standing in for the model's object base: data_fields in, updates recorded."""

    def __init__(self, data_fields: dict[str, Any] | None = None, xsi_type: str | None = None) -> None:
        self.data_fields = data_fields or {}
        self.updates: list[tuple[str, str, str]] = []
        if xsi_type:
            self.xsi_type = xsi_type

    def _field_text(self, key: str) -> str | None:
        value = self.data_fields.get(key)
        return None if value is None else str(value)

    def _set_field(self, xsi_type: str, xpath: str, text: str) -> None:
        self.updates.append((xsi_type, xpath, text))


class ExperimentBase(DataHost):
    @property
    def label(self) -> str:
        return "hand-written label"

    def describe_me(self) -> str:
        return f"experiment {self.xsi_type}"


class ScanBase(DataHost):
    pass


@pytest.fixture(scope="module")
def registry(specs: SchemaSpecs) -> ClassRegistry:
    return build_registry(specs, {"xnat:experimentData": ExperimentBase, "xnat:imageScanData": ScanBase})


def test_registry_gives_classes_by_xsi_type_and_by_name(registry: ClassRegistry, specs: SchemaSpecs) -> None:
    mr = registry["xnat:mrSessionData"]
    assert registry.MrSessionData is mr
    assert registry.for_xsi_type("xnat:mrSessionData") is mr
    assert mr.__name__ == "MrSessionData"
    assert len(registry) == len(specs)
    assert set(registry) == set(specs)
    assert "MrSessionData" in dir(registry)
    with pytest.raises(AttributeError):
        registry.NoSuchClass  # noqa: B018
    with pytest.raises(KeyError):
        registry["xnat:noSuchData"]


def test_inheritance_mirrors_the_xsd_and_family_bases_come_first(registry: ClassRegistry) -> None:
    mr = registry.MrSessionData
    assert mr.__bases__ == (registry.ImageSessionData,)
    assert issubclass(mr, registry.SubjectAssessorData)
    assert issubclass(mr, registry.ExperimentData)
    assert registry.ExperimentData.__bases__[0] is ExperimentBase
    assert issubclass(mr, ExperimentBase) and issubclass(mr, GeneratedObject)
    assert issubclass(registry.MrScanData, ScanBase)
    assert not issubclass(registry.ProjectData, DataHost)
    assert issubclass(registry.ProjectData, GeneratedObject)


def test_class_attributes_describe_the_type(registry: ClassRegistry, specs: SchemaSpecs) -> None:
    mr = registry.MrSessionData
    assert mr.__xsi_type__ == "xnat:mrSessionData"
    assert mr.__spec__ is specs["xnat:mrSessionData"]
    assert {"date", "time", "label", "uid", "scanner_manufacturer", "field_strength"} <= set(mr.__fields__)
    assert "scans" in {child.name for child in mr.__children__}
    assert "field_strength" in vars(mr) and "date" not in vars(mr)  # own fields only; the rest inherited
    assert isinstance(vars(registry.ExperimentData)["date"], FieldDescriptor)


def test_descriptors_convert_both_ways_through_the_host(registry: ClassRegistry) -> None:
    session = registry.MrSessionData({"date": "2023-02-19", "UID": "1.2.3", "scanner/manufacturer": "SIEMENS",
                                      "dcmPatientWeight": "71.5", "fieldStrength": "3.0"})
    assert session.date == date(2023, 2, 19)
    assert session.uid == "1.2.3"
    assert session.scanner_manufacturer == "SIEMENS"
    assert session.dcm_patient_weight == 71.5
    assert session.time is None
    session.date = date(2024, 1, 31)
    session.scanner_manufacturer = "GE"
    session.dcm_patient_weight = 80
    assert session.updates == [
        ("xnat:mrSessionData", "xnat:mrSessionData/date", "2024-01-31"),
        ("xnat:mrSessionData", "xnat:mrSessionData/scanner/manufacturer", "GE"),
        ("xnat:mrSessionData", "xnat:mrSessionData/dcmPatientWeight", "80"),
    ]
    scan = registry.MrScanData({"frames": "176", "series_description": "T1w"})
    scan.quality = "usable"
    assert (scan.frames, scan.series_description) == (176, "T1w")
    assert scan.updates == [("xnat:mrScanData", "xnat:mrScanData/quality", "usable")]


def test_hand_written_attributes_win_over_generated_fields(registry: ClassRegistry) -> None:
    session = registry.MrSessionData({"label": "from the server"})
    assert session.label == "hand-written label"
    assert session.describe_me() == "experiment xnat:mrSessionData"
    assert "label" not in vars(registry.ExperimentData)


def test_an_instance_may_carry_its_servers_subtype(registry: ClassRegistry) -> None:
    cls = registry.for_xsi_type("plugin:fancySessionData", fallback="xnat:imageSessionData")
    assert cls is registry.ImageSessionData
    session = cls({}, xsi_type="plugin:fancySessionData")
    session.operator = "jane"
    assert session.updates == [("plugin:fancySessionData", "plugin:fancySessionData/operator", "jane")]


def test_unknown_xsi_type_gets_a_generic_class_and_is_logged_once(registry: ClassRegistry,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="xnatfs.model.builder"):
        first = registry.for_xsi_type("plugin:neverSeenData")
        second = registry.for_xsi_type("plugin:neverSeenData")
        fallback = registry.for_xsi_type("plugin:neverSeenData", fallback="xnat:experimentData")
        nothing = registry.for_xsi_type(None)
    assert first is second is nothing is registry.generic
    assert issubclass(registry.generic, GeneratedObject)
    assert fallback is registry.ExperimentData
    assert len([r for r in caplog.records if "plugin:neverSeenData" in r.getMessage()]) == 1


def test_registries_from_the_same_specs_are_independent(specs: SchemaSpecs) -> None:
    first = build_registry(specs)
    second = build_registry(specs)
    assert first is not second
    assert first.MrSessionData is not second.MrSessionData
    assert first.MrSessionData.__spec__ is second.MrSessionData.__spec__
    assert not issubclass(first.MrSessionData, second.ExperimentData)
    assert first.generic is not second.generic
    with pytest.raises(AttributeError):  # nothing for the object base yet: a bare class has no data
        first.MrSessionData().date  # noqa: B018


def test_describe_lists_fields_with_types_paths_and_origin(registry: ClassRegistry) -> None:
    text = describe(registry.MrSessionData)
    assert text.startswith("MrSessionData (xnat:mrSessionData, element xnat:MRSession)")
    assert "extends ImageSessionData -> SubjectAssessorData -> ExperimentData" in text
    assert "behaviour from ExperimentBase" in text
    assert "date: date  [date, xs:date]  from xnat:experimentData" in text
    assert "scanner_manufacturer: str  [scanner/manufacturer, xs:string]  from xnat:imageSessionData" in text
    assert "field_strength: str  [fieldStrength, xs:string]\n" in text
    assert "label: (hand-written)" in text
    assert "scans: list of xnat:imageScanData  [scans/scan]" in text
    assert registry.describe("xnat:mrSessionData") == text
    assert describe(int) == "int: not a generated class"


def test_builder_generates_no_source_text_and_keeps_no_module_registry() -> None:
    tree = ast.parse(inspect.getsource(builder))
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func,
                                                                                                 ast.Name)}
    assert not called & {"exec", "eval", "compile"}
    module_values = [value for name, value in vars(builder).items() if not name.startswith("__")]
    assert not any(isinstance(value, (dict, ClassRegistry)) for value in module_values)


def test_nested_family_bases_combine_with_the_generated_chain(specs: SchemaSpecs) -> None:
    class ImageSessionBase(ExperimentBase):
        def scan_count(self) -> int:
            return 0

    nested = build_registry(specs, {"xnat:experimentData": ExperimentBase,
                                    "xnat:imageSessionData": ImageSessionBase}, generic_base=DataHost)
    mro = nested.MrSessionData.__mro__
    assert mro.index(nested.ImageSessionData) < mro.index(ImageSessionBase) < mro.index(nested.ExperimentData)
    assert mro.index(nested.ExperimentData) < mro.index(ExperimentBase) < mro.index(GeneratedObject)
    assert nested.MrSessionData({}).scan_count() == 0
    assert issubclass(nested.generic, DataHost) and issubclass(nested.generic, GeneratedObject)


def test_a_family_base_with_a_conflicting_order_is_dropped_not_fatal(specs: SchemaSpecs,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    class Conflicting(GeneratedObject, ExperimentBase):  # puts GeneratedObject before ExperimentBase
        pass

    with caplog.at_level(logging.WARNING, logger="xnatfs.model.builder"):
        odd = build_registry(specs, {"xnat:experimentData": ExperimentBase, "xnat:imageSessionData": Conflicting})
    assert issubclass(odd.MrSessionData, odd.SubjectAssessorData)
    assert not issubclass(odd.ImageSessionData, Conflicting)
    assert "ImageSessionData" in caplog.text
