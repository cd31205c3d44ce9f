"""XNAT's date and time texts → Python values: the one parser of xnatfs.

XNAT writes times in several shapes (xnat-rest-spec §10, §20), and every consumer (typed fields of
the object model, the mount's modification times, the prearchive's rows) reads them here:

- ISO-like, in listings and ``data_fields``: ``2026-11-25 14:44:12.554``, ``2026-11-25T14:44:12``,
  ``2024-01-15`` (0–6 fraction digits; no zone);
- Java's ``Date.toString()`` in ``meta.start_date``: ``Wed Nov 25 14:44:29 UTC 2026`` (the server's
  zone abbreviation, which is not a reliable offset: ``EST``, ``AEST``, ``IST`` are ambiguous);
- the US form XNAT takes in query filters and some old fields: ``02/19/2023`` (``[ HH:MM:SS]``).

Texts without a usable zone are read in the zone the caller gives (UTC unless told: the server's
own offset is unknown to a client until the fidelity work of issue 12 teaches it).

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
#: zone abbreviations that name one offset everywhere; any other is read in the caller's zone
_UNAMBIGUOUS = {"UTC": timedelta(0), "GMT": timedelta(0), "Z": timedelta(0)}


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
            offset = _UNAMBIGUOUS.get(abbreviation or "")
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


__all__ = ["parse_datetime", "parse_date", "parse_time", "epoch_of"]
