"""Field value conversion (XNAT text ⇄ Python) and the FieldDescriptor over a recording FieldHost."""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from typing import Any

import pytest

from xnatfs.model.fields import NULL_TEXT, FieldDescriptor, FieldHost, to_python, to_xnat
from xnatfs.schema.specs import FieldSpec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "python_type_name", "expected"), [
    ("2023-02-19", "date", date(2023, 2, 19)),
    ("02/19/2023", "date", date(2023, 2, 19)),
    ("2023-02-19 00:00:00.0", "date", date(2023, 2, 19)),
    ("2023-09-27 17:31:21.352", "datetime", datetime(2023, 9, 27, 17, 31, 21, 352000)),
    ("2023-09-27T17:31:21", "datetime", datetime(2023, 9, 27, 17, 31, 21)),
    ("02/19/2023 10:00:01", "datetime", datetime(2023, 2, 19, 10, 0, 1)),
    ("17:31:21", "time", time(17, 31, 21)),
    ("true", "bool", True), ("1", "bool", True), ("false", "bool", False), ("0", "bool", False),
    ("TRUE", "bool", True),
    (" 12 ", "int", 12), ("3.0", "int", 3), (7, "int", 7),
    ("1.5", "float", 1.5), (3, "float", 3.0),
    ("T1 MPRAGE", "str", "T1 MPRAGE"), (5, "str", "5"),
    ("", "int", None), ("   ", "date", None), ("", "str", None), (None, "datetime", None),
])
def test_to_python_converts_xnat_text(text: Any, python_type_name: str, expected: Any) -> None:
    value = to_python(text, python_type_name)
    assert value == expected
    assert type(value) is type(expected)


def test_unparsable_text_is_kept_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="xnatfs.model.fields"):
        first = to_python("not-a-date-7f3a", "date")
        second = to_python("not-a-date-7f3a", "date")
        other = to_python("maybe", "bool")
    assert (first, second, other) == ("not-a-date-7f3a", "not-a-date-7f3a", "maybe")
    assert len([r for r in caplog.records if "not-a-date-7f3a" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "maybe" in r.getMessage()]) == 1


@pytest.mark.parametrize(("value", "python_type_name", "expected"), [
    (None, "str", NULL_TEXT),
    ("already text", "int", "already text"),
    (True, "bool", "true"), (False, "bool", "false"),
    (42, "int", "42"), (2.5, "float", "2.5"), (3, "float", "3"),
    (date(2023, 2, 19), "date", "2023-02-19"),
    (datetime(2023, 9, 27, 17, 31, 21, 352000), "datetime", "2023-09-27 17:31:21.352"),
    (datetime(2023, 9, 27, 17, 31, 21), "date", "2023-09-27"),
    (date(2023, 9, 27), "datetime", "2023-09-27"),
    (time(8, 5, 0), "time", "08:05:00"),
    (7, "str", "7"),
])
def test_to_xnat_formats_values(value: Any, python_type_name: str, expected: str) -> None:
    assert to_xnat(value, python_type_name) == expected


@pytest.mark.parametrize(("value", "python_type_name"), [
    (True, "int"), (1.5, "int"), (1, "bool"), (3, "date"), (date(2023, 1, 1), "time"), ([1], None),
])
def test_to_xnat_refuses_values_of_the_wrong_kind(value: Any, python_type_name: str | None) -> None:
    with pytest.raises(TypeError):
        to_xnat(value, python_type_name, field_name="frames")


def test_to_xnat_refuses_non_finite_floats() -> None:
    with pytest.raises(ValueError):
        to_xnat(float("nan"), "float")


def test_to_python_and_to_xnat_round_trip() -> None:
    for value, type_name in [(datetime(2024, 1, 2, 3, 4, 5, 6000), "datetime"), (date(1999, 12, 31), "date"),
                             (time(23, 59, 58), "time"), (False, "bool"), (-17, "int"), (0.125, "float")]:
        assert to_python(to_xnat(value, type_name), type_name) == value


class RecordingHost:
    """A FieldHost over a plain dict of data_fields that records every update it is asked to send."""

    xsi_type = "xnat:mrSessionData"

    def __init__(self, data_fields: dict[str, Any]) -> None:
        self.data_fields = data_fields
        self.updates: list[tuple[str, str, str]] = []

    def _field_text(self, key: str) -> str | None:
        value = self.data_fields.get(key)
        return None if value is None else str(value)

    def _set_field(self, xsi_type: str, xpath: str, text: str) -> None:
        self.updates.append((xsi_type, xpath, text))


def make_host_class() -> type:
    date_spec = FieldSpec("date", "date", "xs:date", "date", owner="xnat:experimentData")
    manufacturer = FieldSpec("scanner_manufacturer", "scanner/manufacturer", "xs:string", "str",
                             owner="xnat:imageSessionData")
    frames = FieldSpec("frames", "frames", "xs:integer", "int", owner="xnat:imageScanData")
    return type("Host", (RecordingHost,), {spec.name: FieldDescriptor(spec) for spec in (date_spec, manufacturer,
                                                                                        frames)})


def test_descriptor_reads_typed_values_by_xnat_key() -> None:
    host = make_host_class()({"date": "2023-02-19", "scanner/manufacturer": "SIEMENS", "frames": "176"})
    assert isinstance(host, FieldHost)
    assert host.date == date(2023, 2, 19)
    assert host.scanner_manufacturer == "SIEMENS"
    assert host.frames == 176


def test_descriptor_writes_through_the_objects_own_xsi_type() -> None:
    host = make_host_class()({})
    host.date = date(2024, 5, 6)
    host.scanner_manufacturer = "GE MEDICAL SYSTEMS"
    host.frames = 12
    del host.frames
    host.date = None
    assert host.updates == [
        ("xnat:mrSessionData", "xnat:mrSessionData/date", "2024-05-06"),
        ("xnat:mrSessionData", "xnat:mrSessionData/scanner/manufacturer", "GE MEDICAL SYSTEMS"),
        ("xnat:mrSessionData", "xnat:mrSessionData/frames", "12"),
        ("xnat:mrSessionData", "xnat:mrSessionData/frames", NULL_TEXT),
        ("xnat:mrSessionData", "xnat:mrSessionData/date", NULL_TEXT),
    ]


def test_descriptor_refuses_a_wrong_value_before_sending() -> None:
    host = make_host_class()({})
    with pytest.raises(TypeError, match="frames"):
        host.frames = 1.5
    assert host.updates == []


def test_descriptor_on_the_class_is_introspectable() -> None:
    cls = make_host_class()
    descriptor = cls.frames
    assert isinstance(descriptor, FieldDescriptor)
    assert descriptor.spec.xpath == "frames"
    assert "int" in repr(descriptor) and "frames" in (descriptor.__doc__ or "")
