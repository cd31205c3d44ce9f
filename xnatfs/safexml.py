"""The only place that makes lxml parsers.

XML from a server is untrusted. XNAT's documents (item XML, catalogs, ResultSet XML, XSD schemas)
never carry a document type declaration, so any document with a ``<!DOCTYPE …>`` is refused: that
closes XXE (external entities, parameter entities, external DTDs) and entity-expansion bombs
("billion laughs", quadratic blow-up) at the root, whatever the parser would have done with them.
Underneath that rule the parser itself has entity resolution, DTD loading and network access off and
refuses huge trees (lxml's ``huge_tree=False``: text nodes up to 10 MB, nesting up to 256 levels),
and libxml2 aborts entity amplification on its own (a second line of defence for a DOCTYPE the
cheap byte scan cannot see, e.g. in UTF-16). Everything else in xnatfs parses XML through
:func:`parse_xml`.
Imports lxml and the standard library only.
"""

from __future__ import annotations

import re

from lxml import etree

from xnatfs.errors import ServerError

#: The marker that starts a document type declaration (case as XML requires it).
_DOCTYPE = b"<!DOCTYPE"
#: The start of the first element (a tag name after ``<``; comments and PIs start ``<!`` / ``<?``).
_FIRST_TAG = re.compile(rb"<[A-Za-z_:]")


def make_parser() -> etree.XMLParser:
    """A fresh parser (lxml parsers are not thread-safe to share) with every dangerous feature off."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=False,
    )


def parse_xml(data: bytes | str, *, what: str = "XML document") -> etree._Element:
    """Parse ``data`` safely and return the root element.

    Malformed input, or a document with a DOCTYPE (entity declarations, external DTDs), raises
    :class:`~xnatfs.errors.ServerError` naming ``what``; nothing in it is expanded or fetched.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    doctype_at = data.find(_DOCTYPE)
    if doctype_at >= 0:  # refused before any parsing when it precedes the first element (ASCII encodings)
        first_tag = _FIRST_TAG.search(data)
        if first_tag is None or doctype_at < first_tag.start():
            raise _doctype_refused(what)
    try:
        root = etree.fromstring(data, parser=make_parser())
    except etree.XMLSyntaxError as exc:
        raise ServerError(f"Malformed {what}: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.system_url or docinfo.public_id:
        raise _doctype_refused(what)  # a DOCTYPE in another encoding (UTF-16…) gets here
    return root


def _doctype_refused(what: str) -> ServerError:
    return ServerError(f"Refused the server's {what}: it has a DOCTYPE declaration (entities or an external "
                       f"DTD), which XNAT never sends; nothing in it was expanded or fetched")


__all__ = ["make_parser", "parse_xml"]
