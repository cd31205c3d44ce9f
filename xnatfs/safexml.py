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


__all__ = ["make_parser", "parse_xml", "html_words"]


#: Elements whose text is not prose (an error page's CSS and scripts).
_NOT_PROSE = ("style", "script", "noscript", "head")


def html_words(data: bytes | str, limit: int = 300) -> str:
    """The words of an HTML page (its title, then its body text), whitespace collapsed and cut at ``limit``.

    Error answers from XNAT, Tomcat, proxies and single sign-on pages are HTML; a message that quotes
    their markup (``<html> <head> <title>Status page</title>…``) tells the user nothing. lxml's HTML
    parser does not fetch or expand anything (``no_network``); a page it cannot read gives ``""``.
    """
    from lxml import html as lxml_html

    if isinstance(data, bytes):
        data = data[:65536].decode("utf-8", "replace")  # Tomcat's pages are UTF-8 without saying so
    try:
        parser = lxml_html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True)
        root = lxml_html.fromstring(data[:65536], parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return ""
    title = " ".join((root.findtext(".//title") or "").split())
    for element in list(root.iter(*_NOT_PROSE)):
        if element.getparent() is not None:
            element.drop_tree()
    body = " ".join(" ".join(root.itertext()).split())  # a space between blocks: "URI. You", not "URIYou"
    body = re.sub(r"\s+([.,;:!?])", r"\1", body)
    if title and body.startswith(title):
        body = body[len(title):].strip()
    words = f"{title}: {body}" if title and body else title or body
    return words if len(words) <= limit else words[: limit - 1] + "…"
