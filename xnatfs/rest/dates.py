"""XNAT's date and time texts → Python values: the one parser of xnatfs.

XNAT writes times in several shapes (xnat-rest-spec §10, §20), and every consumer (typed fields of
the object model, the mount's modification times, the prearchive's rows) reads them here:

- ISO-like, in listings and ``data_fields``: ``2026-11-25 14:44:12.554``, ``2026-11-25T14:44:12``,
  ``2024-01-15`` (0–6 fraction digits; no zone);
- Java's ``Date.toString()`` in ``meta.start_date``: ``Wed Nov 25 14:44:29 UTC 2026`` (the server's
  zone abbreviation, which is not a reliable offset: ``EST``, ``AEST``, ``IST`` are ambiguous);
- the US form XNAT takes in query filters and some old fields: ``02/19/2023`` (``[ HH:MM:SS]``).

``meta.start_date`` carries the server's zone abbreviation; :data:`ZONE_OFFSETS` knows the common
ones (an ambiguous abbreviation takes its most common meaning: ``CST`` is US Central, ``IST`` India),
so those times are exact. Listing times carry no zone: they are read in the zone the caller gives,
which the model learns from the server's own documents (:func:`zone_of`), else UTC.

Pure; imports the standard library only.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo

_JAVA = re.compile(r"^\w{3} (\w{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (?:(\S+) )?(\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?")
_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                        "Nov", "Dec"), start=1)}
def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


#: zone abbreviations Java's ``Date.toString()`` prints, and their UTC offsets
ZONE_OFFSETS: dict[str, timedelta] = {name: _hours(hours) for name, hours in {
    "UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 1, "BST": 1, "IST": 5.5, "CET": 1, "CEST": 2,
    "MET": 1, "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "GST": 4, "PKT": 5, "ICT": 7, "WIB": 7, "CST": -6,
    "CDT": -5, "EST": -5, "EDT": -4, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8,
    "HST": -10, "AST": -4, "ADT": -3, "NST": -3.5, "NDT": -2.5, "BRT": -3, "ART": -3, "CLT": -4, "CLST": -3,
    "SGT": 8, "HKT": 8, "AWST": 8, "JST": 9, "KST": 9, "ACST": 9.5, "ACDT": 10.5, "AEST": 10, "AEDT": 11,
    "NZST": 12, "NZDT": 13, "SAST": 2, "CAT": 2, "EAT": 3, "WAT": 1,
}.items()}


def zone_of(text: object) -> tzinfo | None:
    """The fixed-offset zone named at the end of a ``Date.toString()`` text, or None (not such a text,
    or an abbreviation we do not know)."""
    if not isinstance(text, str):
        return None
    match = _JAVA.match(text.strip())
    offset = ZONE_OFFSETS.get(match.group(6) or "") if match else None
    return timezone(offset) if offset is not None else None


def parse_datetime(text: object, zone: tzinfo | None = None) -> datetime | None:
    """A datetime from any of XNAT's shapes (see the module docstring), or None if ``text`` is none of them.

    With ``zone`` the result is aware (a zone in the text wins when it is unambiguous); without it the
    result is naive, as the text was.
    """
    if not isinstance(text, str):
        return None
    text = text.strip()
    try:
        match = _ISO.match(text)
        if match:
            year, month, day, hh, mm, ss, frac = match.groups()
            micro = int((frac or "0")[:6].ljust(6, "0"))
            value = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), micro)
            return value.replace(tzinfo=zone) if zone is not None else value
        match = _JAVA.match(text)
        if match and match.group(1) in _MONTHS:
            month_name, day, hh, mm, ss, abbreviation, year = match.groups()
            value = datetime(int(year), _MONTHS[month_name], int(day), int(hh), int(mm), int(ss))
            offset = ZONE_OFFSETS.get(abbreviation or "")
            if offset is not None and zone is not None:
                return value.replace(tzinfo=timezone(offset))
            return value.replace(tzinfo=zone) if zone is not None else value
        match = _US.match(text)
        if match:
            month, day, year, hh, mm, ss = match.groups()
            value = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0))
            return value.replace(tzinfo=zone) if zone is not None else value
    except (ValueError, OverflowError):
        return None
    return None


def parse_date(text: str) -> date:
    """A date field's text (``2024-01-15``, ``02/19/2023``, or a datetime's day); ValueError if none."""
    value = parse_datetime(text)
    if value is None:
        raise ValueError(f"not a date: {text!r}")
    return value.date()


def parse_time(text: str) -> time:
    """A time field's text (``14:44:12``, ``14:44:12.554``); ValueError if it is not one."""
    return time.fromisoformat(text.strip())


def epoch_of(text: object, zone: tzinfo = timezone.utc) -> float | None:
    """Epoch seconds of an XNAT time text read in ``zone`` (UTC by default), or None."""
    value = parse_datetime(text, zone)
    if value is None:
        return None
    try:
        return value.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


__all__ = ["parse_datetime", "parse_date", "parse_time", "epoch_of", "zone_of", "ZONE_OFFSETS"]
