"""Single-object bodies: ``GET <uri>?format=json`` items, item XML, and catalog XML. Pure functions.

JSON shape (xnat-rest-spec §3.3)::

    {"items": [{"meta": {"isHistory": false, "xsi:type": "xnat:mrSessionData", …},
                "data_fields": {"ID": "…", "label": "…", "scanner/manufacturer": "…", …},
                "children": [{"field": "scans/scan", "items": [<item>, …]}, …]}]}

The current version is the first item whose ``meta.isHistory`` is false. ``data_fields`` values keep
their JSON types; :func:`field_text` gives XNAT's text form. XML is parsed through
:mod:`xnatfs.safexml` (no entity expansion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from xnatfs.errors import ServerError
from xnatfs.safexml import parse_xml

CATALOG_NAMESPACE = "http://nrg.wustl.edu/catalog"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


@dataclass(frozen=True)
class Item:
    """One object version: its xsi type, its own fields, its child collections by XML path."""

    xsi_type: str
    fields: Mapping[str, Any]
    children: Mapping[str, tuple[Item, ...]] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def text(self, key: str) -> str | None:
        """The field ``key`` as XNAT text, or None if absent."""
        return field_text(self.fields.get(key)) if key in self.fields else None


def field_text(value: Any) -> str | None:
    """A ``data_fields`` value as text: booleans ``true``/``false``, numbers via ``str``, None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _item(raw: Any) -> Item:
    if not isinstance(raw, Mapping):
        raise ServerError("An item in the server's object document is not an object")
    meta = raw.get("meta") or {}
    fields = raw.get("data_fields") or {}
    children: dict[str, tuple[Item, ...]] = {}
    for child in raw.get("children") or []:
        if isinstance(child, Mapping) and "field" in child:
            children[str(child["field"])] = tuple(_item(i) for i in child.get("items") or [])
    return Item(str(meta.get("xsi:type", "")), dict(fields), children, dict(meta))


def parse_items(body: Any) -> list[Item]:
    """All items of an ``items`` document, in server order."""
    if not isinstance(body, Mapping) or not isinstance(body.get("items"), list):
        raise ServerError(f"The server's object document has no 'items' list: {str(body)[:120]}")
    return [_item(raw) for raw in body["items"]]


def current_item(body: Any) -> Item:
    """The first non-history item of an ``items`` document."""
    items = parse_items(body)
    for item in items:
        if not item.meta.get("isHistory", False):
            return item
    if items:
        return items[0]
    raise ServerError("The server's object document has no items")


def parse_item_xml(data: str | bytes) -> etree._Element:
    """An item XML document (``<xnat:MRSession …>``) → its root element, parsed safely."""
    return parse_xml(data, what="item XML document")


def is_catalog_xml(body: bytes) -> bool:
    """True if ``body`` is a resource catalog (what XNAT returns for ``GET <resource>`` in any format)."""
    head = body[:400].lstrip()
    return head.startswith(b"<?xml") and (b"<cat:Catalog" in head or b"<cat:DCMCatalog" in head)


@dataclass(frozen=True)
class CatalogEntry:
    uri: str
    name: str
    digest: str
    size: int | None
    format: str
    content: str


def parse_catalog(data: str | bytes) -> list[CatalogEntry]:
    """The entries of a ``cat:Catalog`` document (relative URIs, md5 digests when present)."""
    root = parse_xml(data, what="resource catalog")
    entries = []
    for element in root.iter(f"{{{CATALOG_NAMESPACE}}}entry"):
        size = element.get("size")
        entries.append(CatalogEntry(
            uri=element.get("URI", ""), name=element.get("name") or element.get("ID") or element.get("URI", ""),
            digest=element.get("digest", ""), size=int(size) if size and size.isdigit() else None,
            format=element.get("format", ""), content=element.get("content", ""),
        ))
    return entries


__all__ = ["Item", "field_text", "parse_items", "current_item", "parse_item_xml", "is_catalog_xml",
           "CatalogEntry", "parse_catalog"]
