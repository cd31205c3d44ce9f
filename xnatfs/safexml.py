"""The only place that makes lxml parsers.

XML from a server is untrusted: entity resolution, DTD loading and network access are off, and huge
trees are refused, so XXE and billion-laughs payloads are never expanded. Everything else in xnatfs
parses XML through :func:`parse_xml`. Imports lxml and the standard library only.
"""

from __future__ import annotations

from lxml import etree

from xnatfs.errors import ServerError


def make_parser() -> etree.XMLParser:
    """A fresh parser (lxml parsers are not thread-safe to share) with every dangerous feature off."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def parse_xml(data: bytes | str, *, what: str = "XML document") -> etree._Element:
    """Parse ``data`` safely and return the root element; malformed input raises ServerError."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        return etree.fromstring(data, parser=make_parser())
    except etree.XMLSyntaxError as exc:
        raise ServerError(f"Malformed {what}: {exc}") from exc
