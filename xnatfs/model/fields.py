"""Typed field values: XNAT text ⇄ Python values, and the descriptor that generated classes use.

XNAT returns every field as text in an item's ``data_fields`` (sometimes as a JSON number) and
takes text back in a field update. :func:`to_python` turns that text into ``int``, ``float``,
``bool``, ``date``, ``datetime`` or ``time`` as the schema says; :func:`to_xnat` does the reverse.
A value that does not parse stays a string and is logged once: a server's data is never a reason
to crash a read.

Contract with the object base class (``xnatfs.model.base``, written separately): an object whose
class carries :class:`FieldDescriptor` attributes must provide what :class:`FieldHost` lists:

* ``xsi_type`` - the object's actual XNAT type (``xnat:mrSessionData``). The generated classes
  inherit a default from ``GeneratedObject`` (the class's ``__xsi_type__``); a base may override it
  with the type reported by the server, which can be a subtype.
* ``_field_text(key) -> str | None`` - the value of ``data_fields[key]`` of the object's item
  JSON; ``key`` is XNAT's own spelling of the relative xml path (``"series_description"``,
  ``"UID"``, ``"scanner/manufacturer"``), i.e. ``FieldSpec.xpath``. ``None`` if absent.
* ``_set_field(xsi_type, xpath, text) -> None`` - send XNAT's
  ``PUT <object uri>?xsiType=<xsi_type>&<xpath>=<text>``; ``xpath`` is absolute
  (``xnat:mrSessionData/date``, ``xnat:mrSessionData/scanner/manufacturer``) and ``text`` is
  ``"NULL"`` to clear a field (XNAT's convention, as xnatpy's ``del_``). The base is expected to
  refresh or invalidate its cached ``data_fields`` afterwards.

Imports only the standard library and the schema specs (L3).
"""

from __future__ import annotations

import functools
import logging
import math
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from xnatfs.rest.dates import parse_date, parse_datetime, parse_time

if TYPE_CHECKING:
    from xnatfs.schema.specs import FieldSpec

log = logging.getLogger(__name__)

#: The text XNAT takes as "clear this field".
NULL_TEXT = "NULL"

_TRUE_TEXTS = frozenset({"true", "1"})
_FALSE_TEXTS = frozenset({"false", "0"})


@runtime_checkable
class FieldHost(Protocol):
    """What a :class:`FieldDescriptor` needs from the object it sits on (see the module docstring)."""

    @property
    def xsi_type(self) -> str: ...

    def _field_text(self, key: str) -> str | None: ...

    def _set_field(self, xsi_type: str, xpath: str, text: str) -> None: ...


# -- text → value ---------------------------------------------------------------------------------
def _parse_datetime(text: str) -> datetime:
    value = parse_datetime(text)
    if value is None:
        raise ValueError(f"not a datetime: {text!r}")
    return value


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE_TEXTS:
        return True
    if lowered in _FALSE_TEXTS:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)  # "3.0" from a server that stores integers as doubles
        if not number.is_integer():
            raise
        return int(number)


_PARSERS = {
    "int": _parse_int, "float": float, "bool": _parse_bool,
    "date": parse_date, "datetime": _parse_datetime, "time": parse_time,
}
_PYTHON_TYPES: dict[str, type] = {
    "int": int, "float": float, "bool": bool, "date": date, "datetime": datetime, "time": time, "str": str,
}
# Non-string values a field takes in an update; a datetime is a date, so date fields take one too.
_ACCEPTED_VALUES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "date": (date,), "datetime": (date,), "time": (time,),
}


@functools.lru_cache(maxsize=256)  # remembers the last 256 distinct values, so each is logged once
def _log_unparsable(python_type_name: str, text: str) -> None:
    log.warning("Field value %r is not a valid %s; keeping the text", text, python_type_name)


def to_python(text: Any, python_type_name: str) -> Any:
    """XNAT's text for a field → a Python value of ``python_type_name`` (see ``PYTHON_TYPE_NAMES``).

    ``None`` and empty or blank text give ``None``. Text that does not parse is returned unchanged
    (and logged once). A value that already has the right type (a JSON number) is returned as is.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        expected = _PYTHON_TYPES.get(python_type_name, str)
        if isinstance(text, expected) and not (isinstance(text, bool) and python_type_name != "bool"):
            return text
        try:
            text = to_xnat(text)
        except (TypeError, ValueError):  # a list or NaN where a scalar belongs: hand it over unchanged
            _log_unparsable(python_type_name, repr(text)[:100])
            return text
    stripped = text.strip()
    if not stripped:
        return None
    parser = _PARSERS.get(python_type_name)
    if parser is None:
        return text
    try:
        return parser(stripped)
    except (ValueError, OverflowError):
        _log_unparsable(python_type_name, stripped[:100])
        return text


# -- value → text ---------------------------------------------------------------------------------
def _format_clock(value: time | datetime) -> str:
    text = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    return f"{text}.{value.microsecond // 1000:03d}" if value.microsecond else text


def to_xnat(value: Any, python_type_name: str | None = None, *, field_name: str = "value") -> str:
    """A Python value → the text XNAT takes in a field update.

    ``None`` → ``"NULL"`` (clears the field); ``str`` passes through unchanged; ``bool`` →
    ``true``/``false``; dates as ``YYYY-MM-DD``, datetimes as XNAT writes them
    (``2023-09-27 17:31:21.352``, a time zone is dropped: XNAT stores naive local times), times as
    ``HH:MM:SS[.fff]``. With ``python_type_name`` a non-string value of the wrong kind raises
    ``TypeError`` (a ``date`` for a ``datetime`` field and an ``int`` for a ``float`` one are fine).
    """
    if value is None:
        return NULL_TEXT
    if isinstance(value, str):
        return value
    if python_type_name is not None and not _fits(value, python_type_name):
        raise TypeError(f"{field_name} takes a {python_type_name}, not {type(value).__name__} {value!r}")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{field_name}: XNAT cannot store {value!r}")
        return repr(value)
    if isinstance(value, datetime):
        if python_type_name == "date":
            return value.date().isoformat()
        return f"{value:%Y-%m-%d} {_format_clock(value)}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return _format_clock(value)
    raise TypeError(f"{field_name}: cannot send a {type(value).__name__} to XNAT")


def _fits(value: Any, python_type_name: str) -> bool:
    """Does a non-string ``value`` suit a field of ``python_type_name``? ``str`` fields take anything."""
    accepted = _ACCEPTED_VALUES.get(python_type_name)
    if accepted is None:
        return True
    if isinstance(value, bool) and python_type_name != "bool":
        return False
    return isinstance(value, accepted)


# -- the descriptor -------------------------------------------------------------------------------
class FieldDescriptor:
    """A typed attribute backed by one XNAT field; reading costs no request beyond the host's data.

    On the class it returns itself (so ``MrSessionData.label.spec`` is introspectable); on an
    instance it reads ``instance._field_text(spec.xpath)`` and converts it. Assigning sends
    ``instance._set_field(instance.xsi_type, spec.put_xpath(instance.xsi_type), text)``; XNAT
    addresses inherited fields through the object's own type. ``del obj.field`` or assigning
    ``None`` sends ``NULL``.
    """

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec
        self.__doc__ = f"{spec.python_type_name} field {spec.xpath!r} ({spec.xsd_type}). {spec.documentation}".strip()

    def __get__(self, instance: FieldHost | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return to_python(instance._field_text(self.spec.xpath), self.spec.python_type_name)

    def __set__(self, instance: FieldHost, value: Any) -> None:
        text = to_xnat(value, self.spec.python_type_name, field_name=self.spec.name)
        xsi_type = instance.xsi_type
        instance._set_field(xsi_type, self.spec.put_xpath(xsi_type), text)

    def __delete__(self, instance: FieldHost) -> None:
        self.__set__(instance, None)

    def __repr__(self) -> str:
        return f"<FieldDescriptor {self.spec.name}: {self.spec.python_type_name} [{self.spec.xpath}]>"


__all__ = ["FieldDescriptor", "FieldHost", "NULL_TEXT", "to_python", "to_xnat"]
