"""XML request bodies: an XNAT document sent to create or update an archive object (spec §8.3, §9.3, §10.3).

A body counts as XML when its Content-Type is ``text/xml`` or ``application/xml``, when ``inbody=true``,
or when a multipart part's file name ends in ``.xml`` (pyxnat sends ``data.xml``). It is parsed with
entity resolution and network access off, and flattened into the same field paths the query string
uses; ``scans/scan`` elements become child documents so a session document can bring its scans.
A body with a document type declaration is refused (422): no entity of a client's DTD is ever used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from werkzeug.wrappers import Request

from xnatfs.emulator.items import SAFE_PARSER, XSI, schema
from xnatfs.emulator.responses import HTTPError

#: Child collections the emulator takes from a body; other nested objects are left alone.
CHILD_PATHS = {"scans/scan": "xnat:imageScanData"}
_IGNORED = {"sharing", "resources", "experiments", "assessors", "reconstructions", "file", "out", "in",
            "regions", "provenance"}
_XML_TYPES = ("text/xml", "application/xml")


@dataclass
class XmlDocument:
    """A parsed object document: its xsi type, flat field paths, custom fields and child documents."""

    xsi_type: str
    fields: dict[str, Any]
    custom: dict[str, str] = field(default_factory=dict)
    children: dict[str, list["XmlDocument"]] = field(default_factory=dict)


def read_xml_body(request: Request) -> XmlDocument | None:
    """The XML document of a PUT/POST, or None when the request carries no XML."""
    data: bytes | None = None
    mimetype = request.mimetype or ""
    if request.files:
        for storage in request.files.values():
            if (storage.filename or "").lower().endswith(".xml") or storage.mimetype in _XML_TYPES:
                data = storage.read()
                break
    elif mimetype in _XML_TYPES or request.args.get("inbody", "").lower() == "true":
        data = request.get_data()
    if not data or not data.strip():
        return None
    try:
        root = etree.fromstring(data, SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise HTTPError(422, f"Unable to parse the submitted XML document: {exc}") from exc
    if root.getroottree().docinfo.doctype or root.getroottree().docinfo.internalDTD is not None:
        # No document type at all: entities (XXE, "billion laughs") are refused, not just left
        # unexpanded, as a Xerces parser hardened against XXE answers.
        raise HTTPError(422, 'DOCTYPE is disallowed when the feature '
                             '"http://apache.org/xml/features/disallow-doctype-decl" set to true.')
    return _document(root, None)


def _document(node: etree._Element, default_type: str | None) -> XmlDocument:
    xsi_type = node.get(f"{{{XSI}}}type") or schema().type_of_root(etree.QName(node).localname) or default_type
    if not xsi_type:
        raise HTTPError(422, f"Unknown root element {etree.QName(node).localname}")
    doc = XmlDocument(xsi_type, {})
    _flatten(node, "", doc)
    return doc


def _flatten(node: etree._Element, prefix: str, doc: XmlDocument) -> None:
    for name, value in node.attrib.items():
        if not name.startswith("{"):
            doc.fields[prefix + name] = value
    for child in node:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions, unresolved entity references
        local = etree.QName(child).localname
        path = prefix + local
        if path in CHILD_PATHS:
            doc.children.setdefault(path, []).append(_document(child, CHILD_PATHS[path]))
        elif path == "fields/field":
            if child.get("name"):
                doc.custom[child.get("name")] = (child.text or "").strip()
        elif not prefix and local in _IGNORED:
            continue
        else:
            text = (child.text or "").strip()
            if text:
                doc.fields[path] = text
            _flatten(child, path + "/", doc)
