"""XNAT listing bodies ("ResultSet") in JSON, CSV or XML → rows of strings. Pure functions.

Shapes (xnat-rest-spec §3.2):

- JSON ``{"ResultSet": {"Result": [{...}], "totalRecords": "3", "title": "…", "Columns": […]}}``;
  every value is a string on a real server, but numbers and nulls are accepted (``None`` → ``""``).
- CSV: a header line, then one line per row (pyxnat's format).
- XML: ``<ResultSet><results><columns><column>…</column></columns><rows><row><cell>…``.

Any other shape is a :class:`ServerError` naming what was expected, never a KeyError.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xnatfs.errors import ServerError
from xnatfs.safexml import parse_xml

Row = dict[str, str]


@dataclass(frozen=True)
class ResultSet:
    """The rows of one listing, with the optional ``totalRecords`` and ``title`` meta values."""

    rows: tuple[Row, ...]
    total: int | None = None
    title: str | None = None
    columns: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)


def text_of(value: Any) -> str:
    """A listing cell as text: ``None`` → ``""``, booleans as ``true``/``false``, numbers via ``str``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def parse_resultset(body: Any, *, what: str = "listing") -> ResultSet:
    """A decoded JSON body → :class:`ResultSet`; a body of another shape is a ServerError."""
    if not isinstance(body, Mapping) or not isinstance(body.get("ResultSet"), Mapping):
        raise ServerError(f"The server's {what} is not a ResultSet: {str(body)[:120]}")
    result_set = body["ResultSet"]
    result = result_set.get("Result", [])
    if not isinstance(result, list) or not all(isinstance(r, Mapping) for r in result):
        raise ServerError(f"The server's {what} has no list of rows")
    rows = tuple({str(k): text_of(v) for k, v in r.items()} for r in result)
    columns: tuple[str, ...] = ()
    if rows:
        columns = tuple(rows[0].keys())
    return ResultSet(rows, _int_or_none(result_set.get("totalRecords")), result_set.get("title"), columns)


def parse_resultset_csv(text: str | bytes, *, what: str = "listing") -> ResultSet:
    """A CSV listing (header line first) → :class:`ResultSet`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return ResultSet(())
    rows = []
    for line in reader:
        if not line:
            continue
        if len(line) != len(header):
            raise ServerError(f"The server's {what} (CSV) has a row with {len(line)} cells for {len(header)} columns")
        rows.append(dict(zip(header, line)))
    return ResultSet(tuple(rows), None, None, tuple(header))


def parse_resultset_xml(data: str | bytes, *, what: str = "listing") -> ResultSet:
    """An XML listing → :class:`ResultSet` (parsed with entity resolution off)."""
    root = parse_xml(data, what=what)
    if _local(root.tag) != "ResultSet":
        raise ServerError(f"The server's {what} is not a ResultSet document")
    columns = [(c.text or "") for c in root.iter() if _local(c.tag) == "column"]
    rows = []
    for row in (r for r in root.iter() if _local(r.tag) == "row"):
        cells = [(c.text or "") for c in row if _local(c.tag) == "cell"]
        rows.append(dict(zip(columns, cells)))
    return ResultSet(tuple(rows), _int_or_none(root.get("totalRecords")), root.get("title"), tuple(columns))


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


__all__ = ["ResultSet", "Row", "parse_resultset", "parse_resultset_csv", "parse_resultset_xml", "text_of"]
